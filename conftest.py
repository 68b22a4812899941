# The root conftest: every test directory (tests/, plugins/*/tests/) gets the host's test fixtures, and pytester,
# for the tests that run a suite inside a test (the provider contract suite against a broken provider).
pytest_plugins = ["smsconnector.testing", "pytester"]
