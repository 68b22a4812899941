-- One Messages.json create, as the twilio library sends it (form body; Basic auth comes with -H).
wrk.method = "POST"
wrk.body = "To=%2B14155550123&From=%2B15555550100&Body=Your+order+ships+today."
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
