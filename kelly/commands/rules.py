"""``kelly rules``: the 42 rules Kelly can break on purpose, and which ones an emotion calls for.

Why: ``kelly compose --break RULE`` and an intent's ``technical_rule_to_break`` take rule
ids; people need to see them with what each does to the music, when to use it, and
whether MIDI can carry it (generator) or it is a note for the mix (production).
``--emotion`` shows both ways rules are chosen: the automatic choice with severities
(RuleBreakEngine, §5.1) and the catalogue's example-emotion matches (DAiW, §5.2).
"""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    from kelly.intent.rules import CATEGORIES

    p = sub.add_parser("rules", help="list the 42 rule breaks (7 categories) and which an emotion calls for",
                       description="List the rule-breaking catalogue. Use an id with `kelly compose --break RULE`.")
    p.add_argument("--emotion", "-e", metavar="E", help="show the rules this emotion (a name or text) calls for")
    p.add_argument("--category", "-c", metavar="C", help="only this category: " + ", ".join(CATEGORIES))
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _emotion(text: str):
    from kelly.emotion.text import read_text
    from kelly.emotion.thesaurus import state_for
    from kelly.errors import InputError

    try:
        return state_for(text)
    except InputError:
        return read_text(text)


def run(args) -> int:
    from kelly.errors import InputError
    from kelly.intent.rule_generators import GENERATORS
    from kelly.intent.rules import CATEGORIES, RULES, RULES_BY_ID, automatic_rule_breaks, rules_for_emotion

    def entry(rule) -> dict:
        d = rule.to_dict()
        d["expressed_as"] = "MIDI" if rule.id in GENERATORS else "production note"
        d["stage"] = GENERATORS[rule.id][0] if rule.id in GENERATORS else None
        return d

    if args.category is not None and args.category.strip().lower() not in CATEGORIES:
        raise InputError(f"unknown category {args.category!r}; choose one of: {', '.join(CATEGORIES)}")
    cats = [args.category.strip().lower()] if args.category else list(CATEGORIES)
    rules = [r for r in RULES if r.category in cats]
    doc: dict = {"categories": {c: [entry(r) for r in rules if r.category == c] for c in cats}}
    if args.emotion is not None:
        if not args.emotion.strip():
            raise InputError("--emotion needs an emotion name or some text, e.g. --emotion grief")
        state = _emotion(args.emotion)
        auto = automatic_rule_breaks(state)
        doc["emotion"] = {
            "text": args.emotion, "reading": state.label, "family": state.family,
            "valence": round(state.valence, 4), "arousal": round(state.arousal, 4),
            "intensity": round(state.intensity, 4),
            "automatic": [{"rule": rid, "category": RULES_BY_ID[rid].category, **info} for rid, info in
                          sorted(auto.items(), key=lambda kv: -kv[1]["severity"])
                          if RULES_BY_ID[rid].category in cats],
            "catalogue": [r.id for r in rules_for_emotion(args.emotion) if r.category in cats],
        }
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if "emotion" in doc:
        e = doc["emotion"]
        print(f"Emotion: {e['text']} -> {e['reading']} ({e['family']}), valence {e['valence']:+.2f}, "
              f"arousal {e['arousal']:.2f}, intensity {e['intensity']:.2f}")
        print("Automatic rule breaks (severity, why):")
        for item in e["automatic"] or []:
            print(f"  {item['rule']:<34} {item['severity']:.2f}  {item['why']}")
        if not e["automatic"]:
            print("  none: this emotion keeps the rules")
        print("Catalogue matches (example emotions in the text): " + (", ".join(e["catalogue"]) or "none"))
        return 0
    total = 0
    for cat, items in doc["categories"].items():
        print(f"{cat.upper()} ({len(items)})")
        for r in items:
            total += 1
            print(f"  {r['id']}  [{r['expressed_as']}]")
            print(f"      {r['description']}: {r['effect']}. Use when {r['use_when']}. "
                  f"e.g. {', '.join(r['example_emotions'])}")
    print(f"{total} rules; break one with `kelly compose \"...\" --break RULE`")
    return 0
