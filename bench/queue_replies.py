"""Queue N agent replies into a migrated database, as the API would, before the host that sends them starts.

    python bench/queue_replies.py CONFIG N NUMBERS
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from smsconnector import outbound
from smsconnector.app import App
from smsconnector.config import load_config


async def main(config: Path, count: int, numbers: list[str]) -> None:
    app = App(load_config(config, overrides={"sender": {"enabled": False}}))
    try:
        for start in range(0, count, 1000):
            async with app.store.transaction() as session:
                for n in range(start, min(count, start + 1000)):
                    await outbound.queue(session, provider="twilio", from_number=numbers[n % len(numbers)],
                                         to_number=f"+1415{5550000 + n % 5000:07d}",
                                         text=f"Your order {n} ships today.")
    finally:
        await app.store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")))
