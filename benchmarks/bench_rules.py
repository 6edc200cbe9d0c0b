"""Times the default rule set per goods item: our typed grammar versus the same conditions in CEL.

Run: .venv/bin/python benchmarks/bench_rules.py [--items N] [--repeat R]

Our engine's cost is item_contexts() plus RuleSet.evaluate(); CEL's is building a cel.Context
per item plus executing every compiled program. The CEL versions are hand translations of the
default conditions (pair_listed becomes `exists(...startsWith)`, contains_any a `matches`
regex); the accumulation rule is left out of both. CEL raises on `NaN < x`, so it runs on
contexts without NaN features here. Items are clean (no rule fires), the common case.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from collections.abc import Callable

import numpy as np

from risk_service.domain.declaration import AeoStatus, Declaration, DeclarationType, GoodsItem, Party, TransportMode
from risk_service.domain.rules import DEFAULT_RULES_PATH, RuleSet, item_contexts, load_rule_set

FEATURES = ("unit_value_ratio", "log_value_per_kg", "importer_prior_filings", "importer_days_known", "hs_digits")
DAY = datetime.date(2026, 11, 20)

_PAIR = "lists.high_risk_origin_commodities.exists(p, (item.origin_country + ' ' + item.hs_code).startsWith(p))"
_VAGUE = (
    "item.description.matches('(?i)(^|\\\\W)(fak|freight\\\\s+all\\\\s+kinds|general\\\\s+cargo|consolidated|"
    "consolidation|goods|parts|spare\\\\s+parts|sample|samples|accessories|miscellaneous|various|"
    "personal\\\\s+effects|stc|said\\\\s+to\\\\s+contain)(\\\\W|$)')"
)
CEL_CONDITIONS = {
    "UV-VERY-LOW": "features.unit_value_ratio < 0.1",
    "UV-LOW": "features.unit_value_ratio >= 0.1 && features.unit_value_ratio < 0.3",
    "UV-HIGH": "features.unit_value_ratio > 10.0",
    "ORIGIN-HS-PAIR": _PAIR,
    "TRANSSHIPMENT": (
        f"declaration.export_country != '' && item.origin_country != declaration.export_country && {_PAIR}"
    ),
    "WATCHLIST-IMPORTER": "declaration.importer_id in lists.watchlisted_parties",
    "WATCHLIST-EXPORTER": "declaration.exporter_id in lists.watchlisted_parties",
    "WATCHLIST-DECLARANT": "declaration.declarant_id in lists.watchlisted_parties",
    "IMPORTER-NEW": "declaration.type == 'IMPORT' && features.importer_prior_filings == 0.0",
    "AEO-CREDIT-AEOC": "declaration.aeo_status == 'CUSTOMS_SIMPLIFICATIONS'",
    "AEO-CREDIT-AEOS": "declaration.aeo_status == 'SECURITY_AND_SAFETY'",
    "AEO-CREDIT-AEOF": "declaration.aeo_status == 'FULL'",
    "DESC-VAGUE": _VAGUE,
    "DESC-SHORT": f"size(item.description) < 8 && !{_VAGUE}",
    "HS-IMPRECISE": "declaration.type == 'IMPORT' && size(item.hs_code) < 10",
}


def _declaration(n_items: int) -> Declaration:
    items = tuple(
        GoodsItem(i + 1, "8517130000", "Smartphones, 128 GB, model X200", 100.0, "NAR", 20.0, 25.0, 25000.0, "KR")
        for i in range(n_items)
    )
    return Declaration(
        "26GB000000000001", 1, DeclarationType.IMPORT, None, "GB000060", Party("GB1"), Party("GB2"), Party("KR3"),
        AeoStatus.NONE, "KR", "KR", "GB", TransportMode.SEA, "MSCU1234567", ("MSCU1234565",), "FOB", "USD",
        25000.0 * n_items, items,
    )  # fmt: skip


def _median_us(run: Callable[[], object], per: int, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) / per * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10, help="goods items per declaration")
    parser.add_argument("--repeat", type=int, default=300, help="timed runs; the median is printed")
    args = parser.parse_args()

    rule_set: RuleSet = load_rule_set(DEFAULT_RULES_PATH, FEATURES)
    declaration = _declaration(args.items)
    rows = np.tile(np.array([[1.0, 6.0, 40.0, 900.0, 10.0]]), (args.items, 1))
    n_rules = len([r for r in rule_set.rules if r.id in CEL_CONDITIONS])

    contexts = item_contexts(declaration, FEATURES, rows)
    ours_context = _median_us(lambda: item_contexts(declaration, FEATURES, rows), args.items, args.repeat)
    ours_eval = _median_us(lambda: rule_set.evaluate(contexts, on=DAY), args.items, args.repeat)
    print(f"rules: {n_rules} (+1 accumulation rule in ours), items per declaration: {args.items}")
    print(
        f"ours: context {ours_context:6.2f} µs/item + evaluate {ours_eval:6.2f} µs/item"
        f" = {ours_context + ours_eval:6.2f}"
    )

    try:
        import cel
    except ImportError:
        print("cel: not installed (pip install common-expression-language)")
        return
    programs = [cel.compile(source) for source in CEL_CONDITIONS.values()]
    lists = {name: list(values) for name, values in rule_set.lists.items()}

    def cel_variables(context: dict[str, object]) -> dict[str, object]:
        grouped: dict[str, dict[str, object]] = {"declaration": {}, "item": {}, "features": {}}
        for key, value in context.items():
            group, name = key.split(".", 1)
            grouped[group][name] = value
        return {**grouped, "lists": lists}

    def cel_contexts() -> list[cel.Context]:
        return [cel.Context(variables=cel_variables(c)) for c in contexts]

    # cel's `matches` compiles its regex on every call (~1.6 ms here), so time with and without it.
    plain = [p for p, src in zip(programs, CEL_CONDITIONS.values(), strict=True) if ".matches(" not in src]

    def cel_execute(prepared: list[cel.Context], selected: list[cel.Program] = programs) -> int:
        hits = 0
        for context in prepared:
            for program in selected:
                if program.execute(context) is True:
                    hits += 1
        return hits

    prepared = cel_contexts()
    cel_context = _median_us(cel_contexts, args.items, args.repeat)
    cel_eval = _median_us(lambda: cel_execute(prepared), args.items, max(30, args.repeat // 10))
    cel_plain = _median_us(lambda: cel_execute(prepared, plain), args.items, args.repeat)
    print(
        f"cel:  context {cel_context:6.2f} µs/item + evaluate {cel_eval:6.2f} µs/item = {cel_context + cel_eval:6.2f}"
    )
    print(
        f"cel without the {len(programs) - len(plain)} regex rules: evaluate {cel_plain:6.2f} µs/item"
        f" = {cel_context + cel_plain:6.2f} with the context"
    )


if __name__ == "__main__":
    main()
