"""smsconnector-compliance: opt-out, opt-in and HELP keywords, the consent ledger and the send gate."""
