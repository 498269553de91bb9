"""Compare the expert_selection records of two traces (the CPU's and the
GPU's): every (layer, position) present in both, the record's top ids (the
chosen experts, in rank order) and the ids in its values (payload full).

  same_experts.py BASE_TRACE TEST_TRACE [--allow N]

Prints "expert_selection: R records, D rerouted" and exits 0 when at most
--allow (default 0) records name other experts, 1 otherwise."""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "python"))
from greta_trace import read  # noqa: E402


def selections(path):
    out = {}
    for r in read(path).records:
        if r.stage != "expert_selection":
            continue
        ids = list(r.top5)
        if r.values is not None:
            k = len(r.values) // 2
            vals = [int(v) for v in r.values[:k]]
            if vals != ids:
                print(f"{path}: L{r.layer} position {r.position}: top ids "
                      f"{ids} but values {vals}", file=sys.stderr)
                sys.exit(2)
        out[(r.layer, r.position)] = ids
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("base")
    p.add_argument("test")
    p.add_argument("--allow", type=int, default=0)
    a = p.parse_args()
    base, test = selections(a.base), selections(a.test)
    keys = sorted(base.keys() & test.keys())
    if not keys:
        print("no expert_selection record in both traces", file=sys.stderr)
        return 2
    diff = [k for k in keys if base[k] != test[k]]
    for layer, pos in diff[:5]:
        print(f"  L{layer} position {pos}: {base[(layer, pos)]} -> "
              f"{test[(layer, pos)]}")
    print(f"expert_selection: {len(keys)} records, {len(diff)} rerouted")
    return 0 if len(diff) <= a.allow else 1


if __name__ == "__main__":
    sys.exit(main())
