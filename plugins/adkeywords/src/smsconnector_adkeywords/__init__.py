"""Ad keywords: a keyword texted to a brand number opens a conversation for the campaign's skill."""
