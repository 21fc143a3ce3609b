"""A realistic, seeded input for framing.htmlreport.render_html: invented outlets, authored paragraphs.

Every text here was written for this project (source: authored); the outlets and sites are invented.
Used by tests/test_htmlreport.py and bench/report_size.py.
"""

from __future__ import annotations

import itertools

import numpy as np

from framing.vocabulary import count_texts, top_terms

LABELS = ["state_aligned", "western_critical", "neutral_wire"]

_PLACES = ["Moscow", "Beijing", "Astana", "Tashkent", "Brasília", "Pretoria", "Jakarta", "Hanoi", "Ankara", "Baku"]
_TOPICS = ["energy", "grain", "rail freight", "satellite navigation", "nuclear power", "payment systems",
           "fertiliser", "shipbuilding", "customs", "student exchanges"]
_FIGURES = ["12", "18", "26", "31", "40", "7", "55"]

_PARAGRAPHS = {
    "state_aligned": [
        "The two leaders agreed in {place} that their comprehensive strategic partnership has entered a new era, "
        "one built on mutual respect and win-win cooperation in {topic}.",
        "Officials hailed the {topic} agreement as a model of the multipolar world taking shape, in which partners "
        "grow together without lectures from outside.",
        "The friendship between the two peoples, forged over decades, now reaches from {topic} to culture, and both "
        "sides pledged to build a community with a shared future.",
        "Cooperation in {topic} rose by {figure} percent last year, a sign of the vitality of a partnership that "
        "serves the common good of the region.",
        "Visitors to the {place} forum praised the initiative as a bridge between civilisations that lifts "
        "developing nations and respects each country's chosen path.",
    ],
    "western_critical": [
        "Washington's sanctions on {topic} reveal a Cold War mentality that seeks to contain any country refusing "
        "to bow to its hegemony.",
        "NATO's steady expansion eastward, critics in {place} argued, has done more to destabilise the continent "
        "than any of the threats the bloc claims to face.",
        "The double standards of Western capitals are plain: they preach free trade and then block {topic} "
        "exports the moment a rival competes.",
        "By stoking bloc confrontation, the United States and its allies are dragging the world back towards the "
        "divisions that peoples everywhere hoped were buried.",
        "European ministers once again interfered in internal affairs, lecturing {place} about values while "
        "ignoring their own record.",
    ],
    "neutral_wire": [
        "Trade in {topic} between the two countries reached {figure} billion dollars in the first half, according "
        "to customs figures released in {place} on Monday.",
        "The agreement still needs ratification, and analysts cautioned that similar memoranda on {topic} signed in "
        "earlier years were never fully carried out.",
        "Delegations met for three hours in {place}; no joint statement was issued, and officials declined to "
        "say whether a date had been set for the next round.",
        "Western governments have criticised the arrangement, while both governments say it is aimed at no third "
        "party; independent data on {topic} volumes are scarce.",
        "The ministry said {figure} contracts were signed, but did not give their value, and several companies "
        "named in the list could not be reached for comment.",
    ],
}
_TRAINING = {
    "state_aligned": ["Both sides praised the partnership as an engine of win-win development for the region.",
                      "The summit opened a new era of friendship and mutual trust between the two nations.",
                      "Leaders called the initiative a model for a fairer, multipolar world order."],
    "western_critical": ["The sanctions show that Washington still thinks in terms of blocs and containment.",
                         "Critics said the alliance's expansion is the real source of tension on the continent.",
                         "Western lectures on values ring hollow given their own double standards."],
    "neutral_wire": ["Customs data showed trade rose by a fifth, though the figures could not be checked.",
                     "The talks ended without a joint statement; officials gave no date for the next round.",
                     "Analysts noted that earlier agreements of this kind were only partly carried out."],
}
_TITLES = ["Talks in {place} end with new {topic} deals", "What the {topic} agreement means for the region",
           "{place} forum draws record attendance", "Sanctions on {topic} spark sharp response",
           "Analysis: the limits of the {topic} partnership", "Ministers meet in {place} amid tensions"]
_PASSAGES = [
    "The parties reaffirmed their commitment to strengthening coordination on regional security and agreed to "
    "hold the next round of consultations before the end of the year in {place}.",
    "The joint statement said both sides oppose unilateral sanctions that lack a mandate from the Security "
    "Council and called for dialogue on {topic} on an equal footing.",
]
_FIRST = ["Northern", "Harbour", "Eastern", "Meridian", "Coastal", "Capital", "Riverside", "Continental", "Union",
          "Frontier", "Steppe", "Silk Road", "Pacific", "Atlas", "Lakeside"]
_SECOND = ["Ledger", "Daily", "Courier", "Herald", "Monitor", "Dispatch", "Review", "Observer", "Post", "Wire"]


def outlet_names(n: int) -> list[str]:
    base = [f"{a} {b}" for a, b in itertools.product(_FIRST, _SECOND)]
    return [base[i % len(base)] + ("" if i < len(base) else f" {i // len(base) + 1}") for i in range(n)]


def _fill(template: str, rng: np.random.Generator) -> str:
    return template.format(place=rng.choice(_PLACES), topic=rng.choice(_TOPICS), figure=rng.choice(_FIGURES))


def _scores(label: int, rng: np.random.Generator) -> np.ndarray:
    raw = rng.dirichlet([1.0, 1.0, 1.0]) * rng.uniform(0.1, 1.0)
    raw[label] += rng.uniform(0.3, 1.6)
    p = raw / raw.sum()
    if p.argmax() != label:  # keep the drawn label the most probable one
        p[label], p[p.argmax()] = p[p.argmax()], p[label]
    return p


def sample_report_data(n_outlets: int, seed: int = 0, vocabulary: bool = True) -> dict:
    """A report input of `n_outlets` outlets with a long tail of small ones, as a real archive has."""
    rng = np.random.default_rng(seed)
    names = outlet_names(n_outlets)
    training = [(text, label) for label, texts in _TRAINING.items() for text in texts]
    outlets, documents, evidence, comparisons_src, texts = [], [], {}, {}, []
    doc_number = 0
    for name in names:
        mix = rng.dirichlet([2.0, 1.2, 2.5])
        n_docs = int(min(60, 1 + rng.pareto(1.3) * 2))
        counts = np.zeros(3, dtype=int)
        pool: list[dict] = []
        for _ in range(n_docs):
            doc_number += 1
            n_par = int(rng.integers(3, 22))
            strip = rng.choice(3, n_par, p=mix).tolist()
            counts += np.bincount(strip, minlength=3)
            slug = name.lower().replace(" ", "-")
            title = _fill(str(rng.choice(_TITLES)), rng) if rng.random() > 0.1 else None
            doc = {"doc": f"archive/{slug}/{doc_number:06d}.html", "outlet": name, "title": title,
                   "date": f"2024-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}",
                   "url": f"https://{slug}.example/news/{doc_number}" if rng.random() > 0.15 else None,
                   "shares": {label: round(float(np.mean(np.array(strip) == j)), 4) for j, label in enumerate(LABELS)},
                   "strip": strip}
            documents.append(doc)
            for index, label in enumerate(strip):
                if len(pool) < 40 or rng.random() < 0.1:  # evidence candidates: a bounded sample per outlet
                    pool.append({"doc": doc["doc"], "title": title, "date": doc["date"], "url": doc["url"],
                                 "index": index, "label": label})
        n = int(counts.sum())
        share = counts / n
        half = 1.96 * np.sqrt(share * (1 - share) / max(n, 1)) + 0.5 / n
        prevalence = np.clip(share + rng.normal(0, 0.02, 3), 0, None)
        prevalence /= prevalence.sum()
        outlets.append({
            "outlet": name, "documents": n_docs, "paragraphs": n,
            "share": {label: round(float(share[j]), 4) for j, label in enumerate(LABELS)},
            "ci": {label: [round(float(max(0, share[j] - half[j])), 4), round(float(min(1, share[j] + half[j])), 4)]
                   for j, label in enumerate(LABELS)},
            "prevalence": {label: round(float(prevalence[j]), 4) for j, label in enumerate(LABELS)},
            "prevalence_ci": {label: [round(float(max(0, prevalence[j] - 1.3 * half[j])), 4),
                                      round(float(min(1, prevalence[j] + 1.3 * half[j])), 4)]
                              for j, label in enumerate(LABELS)},
            "method": "acc", "duplicates": int(rng.integers(0, 4)), "duplicate_documents": int(rng.integers(0, 2)),
            "left_out": {"off_topic": int(rng.integers(0, 6)), "language": int(rng.integers(0, 3))},
            "voice": _voice(rng),
        })
        comparisons_src[name] = (prevalence, half * 1.3)
        by_label: dict = {}
        for j, label in enumerate(LABELS):
            items = []
            for cand in itertools.islice((c for c in pool if c["label"] == j), 10):  # 5 of each kind are kept
                template = _PARAGRAPHS[label][int(rng.integers(len(_PARAGRAPHS[label])))]
                text = _fill(template, rng)
                scores = _scores(j, rng)
                texts.append((name, text))
                nbrs = sorted(rng.choice(len(training), 3, replace=False).tolist())
                items.append({"text": text, "doc": cand["doc"], "title": cand["title"], "date": cand["date"],
                              "url": cand["url"], "index": cand["index"],
                              "scores": {lab: round(float(p), 4) for lab, p in zip(LABELS, scores)},
                              "neighbours": [{"text": training[t][0], "label": training[t][1],
                                              "similarity": round(float(rng.uniform(0.45, 0.9)), 3)} for t in nbrs]})
            top = sorted(items, key=lambda e: -e["scores"][label])
            margin = sorted(items, key=lambda e: e["scores"][label] - sorted(e["scores"].values())[-2])
            by_label[label] = {"confident": top[:5], "borderline": margin[:5]}
        evidence[name] = by_label
    return {
        "title": "Framing report", "labels": LABELS, "neutral": "neutral_wire",
        "notes": ["Model: default head over all-MiniLM-L6-v2 (sample data, invented outlets).",
                  "Intervals: 95% bootstrap, documents resampled, then paragraphs within them."],
        "outlets": outlets, "comparisons": _comparisons(names, comparisons_src),
        "documents": documents, "evidence": evidence,
        "vocabulary": top_terms(count_texts(texts).per_outlet) if vocabulary else {},
        "passages": _passages(names, rng),
    }


def _voice(rng: np.random.Generator) -> dict:
    own, quoted = rng.dirichlet([2, 1, 3]), rng.dirichlet([3, 2, 1])
    return {"own": {label: round(float(own[j]), 4) for j, label in enumerate(LABELS)},
            "quoted": {label: round(float(quoted[j]), 4) for j, label in enumerate(LABELS)},
            "n": {"own": int(rng.integers(5, 200)), "quoted": int(rng.integers(1, 80))}}


def _comparisons(names: list[str], src: dict) -> list[dict]:
    if len(names) <= 20:
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    else:  # as framing.prevalence.compare does past its pair limit: each outlet against the rest
        pairs = [(a, None) for a in names]
    pooled = np.mean([p for p, _ in src.values()], axis=0)
    out = []
    for a, b in pairs:
        pa, ha = src[a]
        pb, hb = (src[b] if b is not None else (pooled, np.zeros(3)))
        for j, label in enumerate(LABELS):
            d, h = float(pa[j] - pb[j]), float(np.hypot(ha[j], hb[j]))
            out.append({"a": a, "b": b, "label": label, "difference": round(d, 4),
                        "ci": [round(d - h, 4), round(d + h, 4)], "excludes_zero": bool(d - h > 0 or d + h < 0)})
    return out


def _passages(names: list[str], rng: np.random.Generator) -> list[dict]:
    out: list[dict] = []
    if len(names) < 2:
        return out
    for k in range(min(60, max(2, len(names) // 50))):
        template = _PASSAGES[k % len(_PASSAGES)]
        who = sorted(set(rng.choice(names, int(rng.integers(2, min(12, len(names)) + 1)), replace=True).tolist()))
        if len(who) > 1:
            out.append({"text": _fill(template, rng), "outlets": who, "n": len(who) + int(rng.integers(0, 5))})
    out.sort(key=lambda p: (-len(p["outlets"]), -p["n"], p["text"]))
    return out
