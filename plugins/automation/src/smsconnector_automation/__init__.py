"""Automation replies: a brand's systems send automated texts, and each send says what becomes of the replies."""
