-- One v4 MT, as the OpenMarket plugin sends it (JSON body; Basic auth comes with -H).
wrk.method = "POST"
wrk.body = '{"mobileTerminate": {"destination": {"address": "14155550123"}, "source": {"ton": 1, "address": ' ..
  '"15555550100"}, "message": {"type": "text", "content": "Your order ships today.", "charset": "GSM", ' ..
  '"mlc": "segment"}, "delivery": {"receiptRequested": "final", "url": ' ..
  '"https://sms.bench.example/webhooks/openmarket/status"}, "options": {"note1": "1"}}}'
wrk.headers["Content-Type"] = "application/json; charset=UTF-8"
