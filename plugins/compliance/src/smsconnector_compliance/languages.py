"""The built-in keyword languages: keywords, tier-2 phrases, negations, filler words and reply texts.

Written as a consumer would type them; :mod:`.keywords` normalizes both sides the same way, so accents, case,
apostrophes and spacing here do not matter. Every list can be replaced per deployment or per brand number.
"""

from __future__ import annotations

from typing import Any

#: Twilio's default long-code keywords [S1][S2][S5] plus the FCC per-se words ("opt out") and Telnyx's
#: "STOP ALL"; AWS's REMOVE and OPT-OUT.
ENGLISH: dict[str, Any] = {
    "opt_out": ["STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
                "OPT OUT", "REMOVE"],
    "opt_in": ["START", "YES", "UNSTOP"],
    "help": ["HELP", "INFO"],
    # Tier 2: a phrase anywhere in a sentence that a reasonable person reads as "stop messaging me".
    "phrases": [
        "stop texting me", "stop texting", "stop txting", "stop messaging me", "stop messaging", "stop sending me",
        "stop sending", "stop contacting me", "stop the texts", "stop these texts", "stop your texts",
        "stop the messages", "stop these messages", "stop all texts", "stop all messages", "stop texts",
        "stop messages", "stop text me", "unsubscribe me", "opt me out", "remove me", "remove my number",
        "take me off", "delete my number", "no more texts", "no more messages", "no more txts",
        "don't text me", "do not text me", "don't message me", "do not message me", "don't contact me",
        "do not contact me", "never text me", "never contact me", "quit texting me", "quit messaging me",
        "leave me alone", "i want to unsubscribe", "how do i unsubscribe", "how to unsubscribe",
        "i want to opt out", "how do i opt out", "don't want these texts", "don't want these messages",
        "don't want any more texts", "don't want any more messages", "don't want your texts",
        "do not want these texts", "do not want any more texts", "don't want to receive", "do not want to receive",
        "don't send me", "do not send me", "don't ever text me", "do not ever text me", "never text me again",
    ],
    # Tier 2: short revocations that count only as a whole clause, besides the opt-out keywords ("Stop it!"); in a
    # longer sentence they are mentions ("how do I stop it from crashing").
    "commands": ["stop it", "stop this", "stop that", "stop them", "stop everything", "quit it", "quit this",
                 "quit that"],
    # Words that may come with a command without changing it: an answer, an insistence, a reason. They are not
    # negations ("No STOP" revokes) and may be clauses of their own ("Not interested. Stop").
    "lead_ins": ["no", "nope", "nah", "no thanks", "no thank you", "not interested", "im not interested",
                 "i am not interested", "i said", "i said to", "i already said", "i told you", "i told you to",
                 "i asked you to", "again", "seriously", "for the last time", "wrong number", "wrong person",
                 "who is this", "who are you", "enough", "i mean it", "i never signed up"],
    # A negation among the few words before a keyword or phrase cancels it ("don't stop", "I don't want you to
    # stop"), unless a conjunction comes between them ("I don't know why, but stop").
    "negations": ["not", "don't", "do not", "doesn't", "didn't", "never", "won't", "can't", "cannot", "shouldn't",
                  "wouldn't", "isn't", "no", "no need to", "no reason to"],
    "conjunctions": ["but", "just", "so", "and", "anyway", "then"],
    # Words that may surround a keyword without changing what it says ("Stop please", "Stop. Thank you").
    "fillers": ["please", "pls", "plz", "pleas", "thanks", "thank", "you", "u", "thx", "ty", "thankyou", "now",
                "ok", "okay", "k", "asap", "immediately", "sorry", "bye", "goodbye", "already", "just", "right",
                "away", "hi", "hello", "hey"],
    "contact_fallback": "reply to this message",
    "opt_out_reply": "{brand}: You are unsubscribed and will receive no more messages. Reply START to resubscribe.",
    "opt_in_reply": ("{brand}: You are resubscribed. For help: {contact}. Msg frequency varies. "
                     "Msg & data rates may apply. Reply STOP to opt out."),
    "help_reply": ("{brand}: For help: {contact}. Msg frequency varies. Msg & data rates may apply. "
                   "Reply STOP to opt out."),
}

#: Canadian carriers require ARRET and AIDE, answered in French [S6]; ARRETT/ARRETE as Twilio Proxy treats them
#: [S7]. STOP and START are here too, so a number whose first language is French answers them in French.
FRENCH: dict[str, Any] = {
    "opt_out": ["ARRET", "ARRETT", "ARRETE", "ARRETEZ", "ARRETER", "STOP", "DESABONNER", "DESINSCRIRE"],
    "opt_in": ["START"],
    "help": ["AIDE", "INFO"],
    "phrases": [
        "arrêtez de m'écrire", "arrêtez de m'envoyer", "arrêtez les messages", "arrêtez les sms",
        "arrêtez les textos", "arrête de m'écrire", "arrête de m'envoyer", "ne m'écrivez plus",
        "ne m'envoyez plus", "ne m'écris plus", "je ne veux plus recevoir", "je ne veux plus de messages",
        "je ne veux plus de sms", "désabonnez-moi", "désinscrivez-moi", "je veux me désabonner",
        "je veux me désinscrire", "retirez-moi", "retirez mon numéro", "plus de sms", "plus de messages",
    ],
    "commands": ["arrête ça", "arrêtez ça", "arrête tout", "arrêtez tout"],
    "lead_ins": ["non", "non merci", "pas interesse", "je ne suis pas interesse", "j'ai dit", "je vous ai dit",
                 "je t'ai dit", "mauvais numero", "qui est-ce", "c'est qui"],
    "negations": ["ne", "n", "pas", "jamais"],
    "conjunctions": ["mais", "donc", "et", "alors"],
    "fillers": ["svp", "stp", "merci", "maintenant", "ok", "daccord", "bonjour", "salut", "immédiatement", "tout",
                "de", "suite"],
    "contact_fallback": "répondez à ce message",
    "opt_out_reply": ("{brand} : Vous êtes désabonné et ne recevrez plus de messages. "
                      "Répondez START pour vous réabonner."),
    "opt_in_reply": ("{brand} : Vous êtes réabonné. Aide : {contact}. Fréquence variable. "
                     "Des frais de messagerie peuvent s'appliquer. Répondez ARRET pour vous désabonner."),
    "help_reply": ("{brand} : Aide : {contact}. Fréquence variable. Des frais de messagerie peuvent s'appliquer. "
                   "Répondez ARRET pour vous désabonner."),
}

BUILTIN: dict[str, dict[str, Any]] = {"en": ENGLISH, "fr": FRENCH}

#: What a provider that "handles keywords" itself answers and blocks on; Twilio's defaults with STOP filtering
#: on, which is the default of every Twilio account [S1].
PROVIDER_KEYWORDS: dict[str, dict[str, Any]] = {
    "twilio": {
        "handles_keywords": True,
        "opt_out": ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"],
        "opt_in": ["START", "YES", "UNSTOP"],
        "help": ["HELP", "INFO"],
        "opt_out_error_codes": ["21610"],
    },
}
