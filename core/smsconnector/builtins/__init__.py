"""Plugins that ship with the host, registered through the same entry points as external ones."""
