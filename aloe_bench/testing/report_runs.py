"""Synthetic run directories of realistic size and shape, for testing and timing the HTML report.

A real 100-persona x 10-turn run needs a capable model and judge; the report only needs files of the
same shape and size. These are written through the same helpers a real run uses (records, metrics,
atomic writes), with every field the shared contract lets a run hold: a judge panel per turn
(`judgements`), swap judgements, warnings, reliability / validity / audit sections and `audit.jsonl`.
Scores are drawn from a seeded generator with a known per-turn trend, so a test knows what the page
must show.

    python -m aloe_bench.testing.report_runs OUT_DIR [--personas 100] [--turns 10] [--injection]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from aloe_bench.datasets.personas import load_demo
from aloe_bench.log.results import (
    CONVERSATIONS_FILE,
    FORMAT_VERSION,
    RESULTS_FILE,
    ConversationRecord,
    TurnRecord,
    score_matrix,
    write_conversations,
    write_json_atomic,
    write_text_atomic,
)
from aloe_bench.metrics.alignment import alignment_metrics

# Untrusted text as a model could write it: each piece would run script or add markup if a page
# treated it as HTML. The page must show all of it literally.
INJECTIONS = (
    "<script>window.__pwned = 'script'; alert(1)</script>",
    "</script><script>window.__pwned = 'breakout'</script>",
    '"><img src=x onerror="window.__pwned = \'img\'">',
    "<!-- <script>window.__pwned = 'comment'</script> -->",
    "\u2028line separator\u2029paragraph separator & &amp; <b>bold?</b>",
)

WORDS = [
    "honestly",
    "that",
    "sounds",
    "like",
    "a",
    "good",
    "plan",
    "and",
    "I",
    "think",
    "the",
    "weekend",
    "market",
    "would",
    "be",
    "the",
    "right",
    "place",
    "to",
    "start",
    "because",
    "people",
    "there",
    "already",
    "know",
    "your",
    "work",
    "so",
    "you",
    "could",
    "try",
    "a",
    "small",
    "table",
    "first",
    "then",
    "see",
    "what",
    "sells",
    "best",
    "before",
    "you",
    "spend",
    "money",
    "on",
    "more",
    "wood",
    "or",
    "paint",
    "and",
    "maybe",
    "ask",
    "your",
    "grandson",
    "to",
    "help",
    "carry",
    "things",
    "since",
    "he",
    "is",
    "learning",
    "the",
    "knots",
    "anyway",
    "and",
    "it",
    "gives",
    "you",
    "both",
    "time",
    "together",
    "which",
    "matters",
    "more",
    "than",
    "the",
    "sales",
    "in",
    "the",
    "end",
]


def _text(rng: np.random.Generator, chars: int) -> str:
    """Plausible-looking prose of about `chars` characters."""
    out: list[str] = []
    length = 0
    while length < chars:
        n = int(rng.integers(8, 18))
        start = int(rng.integers(0, len(WORDS) - n))
        sentence = " ".join(WORDS[start : start + n])
        sentence = sentence[0].upper() + sentence[1:] + "."
        out.append(sentence)
        length += len(sentence) + 1
    return " ".join(out)[:chars]


def _facts(profile: str) -> list[str]:
    return [s.strip().rstrip(".") + "." for s in profile.split(". ") if s.strip()]


def write_report_run(
    directory: str | Path,
    *,
    personas: int = 100,
    turns: int = 10,
    seed: int = 0,
    model: str = "synthetic/model",
    skill: float = 0.0,
    learning: float = 0.12,
    judges: tuple[str, ...] = ("synthetic/judge-a", "synthetic/judge-b"),
    reply_chars: int = 600,
    user_chars: int = 220,
    failed: int = 0,
    injection: bool = False,
    audit: bool = True,
    n_bootstrap: int = 500,
) -> Path:
    """A run dir like a finished ALOE run: `personas` conversations x `turns` turns.

    Turn k's true score is 2.4 + skill + learning * k plus noise; each judge of the panel sees it
    with its own noise, and the turn's `score` is the panel mean (as in the shared contract). The
    last `failed` conversations are recorded as failed. With `injection`, the first persona, its
    replies, a judge answer, an audit fact, a warning and the label carry markup and script.
    """
    out = Path(directory)
    rng = np.random.default_rng(seed)
    demo = load_demo().personas
    conversations: list[ConversationRecord] = []
    audit_rows: list[dict[str, Any]] = []
    for i in range(personas):
        base = demo[i % len(demo)]
        profile = f"{base.profile} (Synthetic variant {i}.)"
        personality = base.personality
        if injection and i == 0:
            profile = f"{INJECTIONS[0]} {INJECTIONS[2]} {profile}"
            personality = f"{INJECTIONS[1]} {personality}"
        pid = f"p{i:03d}"
        is_failed = i >= personas - failed
        n_turns = max(1, turns // 2) if is_failed else turns
        facts = _facts(profile)
        first: list[int | None] = [None] * len(facts)
        conv_turns, audit_turns = [], []
        for k in range(1, n_turns + 1):
            true = 2.4 + skill + learning * k + rng.normal(0, 0.8)
            judgements: list[dict[str, Any]] = []
            for judge in judges:
                invalid = rng.random() < 0.02
                s = None if invalid else int(np.clip(round(true + rng.normal(0, 0.5)), 1, 5))
                raw = f"The reply {'fits' if (s or 0) >= 3 else 'misses'} this user. " + _text(rng, 90)
                history = [raw] if not invalid else [_text(rng, 60), _text(rng, 60), _text(rng, 60)]
                judgements.append(
                    {
                        "judge": judge,
                        "repeat": 0,
                        "score": s,
                        "raw": f"{raw} Score: {s}" if s else history[-1],
                        "attempts": len(history),
                        "history": history,
                        "error": None if s else "no score in the answer after re-asks",
                    }
                )
            valid = [j["score"] for j in judgements if j["score"] is not None]
            score: float | int | None = None
            if valid:
                score = valid[0] if len(valid) == 1 else round(float(np.mean(valid)), 6)
            user = _text(rng, user_chars)
            reply = _text(rng, reply_chars)
            judge_raw = judgements[0]["raw"]
            if injection and i == 0:
                reply = f"{INJECTIONS[k % len(INJECTIONS)]} {reply}"
                user = f"{INJECTIONS[(k + 1) % len(INJECTIONS)]} {user}"
                judge_raw = f"{INJECTIONS[2]} {judge_raw}"
            other = f"p{(i + 1) % personas:03d}"
            turn = TurnRecord.from_dict(  # as conversations.jsonl holds it
                {
                    "user": user,
                    "assistant": reply,
                    "score": score,  # a panel mean is a float (shared contract)
                    "judge_raw": judge_raw,
                    "judge_attempts": max(j["attempts"] for j in judgements),
                    "judged": True,
                    "judgements": judgements,
                    "swap_judgements": [
                        {**judgements[0], "persona_id": other, "score": int(np.clip(round(true - 1.5), 1, 5))}
                    ],
                }
            )
            conv_turns.append(turn)
            unrevealed = [f for f in range(len(facts)) if first[f] is None]
            revealed = [f for f in unrevealed if rng.random() < 0.25]
            for f in revealed:
                first[f] = k
            audit_turns.append(
                {
                    "turn": k,
                    "revealed": revealed,
                    "role_breaks": ["asks-as-assistant"] if rng.random() < 0.05 else [],
                    "advice_request": bool(rng.random() < 0.2),
                    "contradictions": [],
                }
            )
        conversations.append(
            ConversationRecord(
                id=pid,
                persona={"profile": profile, "personality": personality},
                turns=conv_turns,
                status="failed" if is_failed else "complete",
                error="simulated user gave no message after 2 retries" if is_failed else None,
            )
        )
        audit_rows.append({"id": pid, "facts": facts, "first_revealed": first, "turns": audit_turns})
    metrics = alignment_metrics(score_matrix(conversations, turns), seed=seed, n_bootstrap=n_bootstrap)
    metrics["failed"] = failed
    metrics["planned"] = personas
    label = f"{model} {INJECTIONS[0]}" if injection else model
    results = {
        "format_version": FORMAT_VERSION,
        "aloe_bench_version": "synthetic",
        "label": label,
        "config": {
            "task": "synthetic",
            "model": {"spec": model, "args": {}, "max_new_tokens": 512, "temperature": 0.0},
            "simulator": {"spec": "synthetic/simulator", "args": {}},
            "judge": {"spec": judges[0], "args": {}},
            "judges": [{"spec": j, "args": {}, "label": j} for j in judges],  # as a panel run records them
            "personas": {"set": "synthetic", "count": personas, "sha256": f"synthetic-{personas}"},
            "turns": turns,
            "seed": seed,
            "protocol": "aloe-v1",
            "persona_disclosure": "hidden",
            "judge_reasks": 2,
            "packages": {"python": "3.x", "aloe-bench": "synthetic"},
        },
        "status": "complete" if not failed else "incomplete",
        "metrics": metrics,
        "usage": {
            "model": {"calls": personas * turns, "cached": 0, "prompt_tokens": 0, "completion_tokens": 0}
        },
        "failures": [{"id": c.id, "error": c.error} for c in conversations if c.status == "failed"],
        "warnings": [
            {
                "code": "judge-no-discrimination",
                "message": f"judge {judges[-1]} scores a reply to the wrong persona as high as to the right one"
                + (f" {INJECTIONS[2]}" if injection else ""),
            }
        ],
        "reliability": {
            j: {"alpha": round(float(rng.uniform(0.4, 0.8)), 3), "ci": [0.3, 0.9], "n": personas * turns}
            for j in judges
        },
        "validity": {
            "swap": {
                j: {
                    "discrimination": 0.8,
                    "discrimination_ci": [0.6, 1.0],
                    "auc": 0.7,
                    "auc_ci": [0.6, 0.8],
                    "n": 50,
                }
                for j in judges
            },
            "length_bias": {j: {"spearman": 0.21, "n": personas * turns, "unit": "turn"} for j in judges},
        },
    }
    if audit:
        results["audit"] = {
            "auditor": "synthetic",
            "facts_method": "sentences",
            "disclosure": [
                {"turn": k, "mean": round(0.25 * k / turns, 3), "ci": [0.1, 0.4], "n": personas}
                for k in range(1, turns + 1)
            ],
            "turn1": 0.25,
            "never_revealed": 0.1,
            "role_breaks": [int(rng.integers(0, 4)) for _ in range(turns)],
        }
        write_text_atomic(
            out / "audit.jsonl", "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in audit_rows)
        )
    write_conversations(out / CONVERSATIONS_FILE, conversations)
    write_json_atomic(out / RESULTS_FILE, results)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="write a synthetic run directory of realistic size")
    p.add_argument("output")
    p.add_argument("--personas", type=int, default=100)
    p.add_argument("--turns", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="synthetic/model")
    p.add_argument("--skill", type=float, default=0.0)
    p.add_argument("--injection", action="store_true")
    args = p.parse_args(argv)
    path = write_report_run(
        args.output,
        personas=args.personas,
        turns=args.turns,
        seed=args.seed,
        model=args.model,
        skill=args.skill,
        injection=args.injection,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
