# The root conftest: every test directory (tests/, plugins/*/tests/) gets the host's test fixtures.
pytest_plugins = ["smsconnector.testing"]
