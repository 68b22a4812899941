pytest_plugins = ["smsconnector.testing"]
