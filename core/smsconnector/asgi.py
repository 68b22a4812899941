"""``uvicorn smsconnector.asgi:app``: the app built from the configuration file and the environment.

For process managers and servers other than ``smsconnector serve`` (gunicorn with uvicorn workers, hypercorn).
"""

from .app import App
from .config import default_config_path, load_config

app = App(load_config(default_config_path()))
