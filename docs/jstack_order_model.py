"""A model of ``luckystack.graph.parallel.ordered_map`` with one worker (jobs 2), to compare orders of
the stack node's items: prints each order's wall time over the ideal (the items' CPU over 2).

The caller computes an item whenever the next result in order is not ready, at most
``WAITING_PER_JOB * jobs`` results ahead of a worker's; the worker holds at most
``AHEAD_PER_WORKER`` items, refilled only when the caller is between items; the last item is the
caller's. Costs: CPU seconds per item of the planet run (2000-frame Jupiter, planet.json, jobs 1,
``time.process_time`` around ``accumulate_chunk``, shared machine), then 40 sets perturbed ×U(0.8, 1.25).
Run: python docs/jstack_order_model.py
"""

import random
import statistics

AP = [0.4922, 0.6572, 0.7427, 0.7184, 0.6533, 0.5750, 0.6944, 0.4364]  # the 8 AP chunks
BG = [0.0645, 0.0910, 0.0986, 0.0979, 0.0958, 0.0794, 0.1089, 0.0599]  # the 8 background chunks


def ordered_map(costs, caller=0.0, worker=0.0, ahead=2, max_waiting=4):
    """(caller's end, worker's end) of one map over items of ``costs`` started at these times."""
    slots, in_flight, i, n = [], 0, 0, len(costs)  # slots: (on the worker, finish time), in order
    while True:
        while i < n - 1 and in_flight < ahead:
            worker = max(worker, caller) + costs[i]
            slots.append((True, worker))
            in_flight, i = in_flight + 1, i + 1
        exhausted = i >= n
        if slots:
            on_worker, finish = slots[0]
            if not on_worker or finish <= caller or exhausted or len(slots) - in_flight >= max_waiting:
                slots.pop(0)
                if on_worker:
                    in_flight -= 1
                    caller = max(caller, finish)
                continue
        if exhausted:
            return caller, worker
        caller += costs[i]
        slots.append((False, caller))
        i += 1


def orders(ap, bg):
    return {"two maps, background first (main)": None, "APs then background, one map": ap + bg,
            "APs' last after background's first (jstack)": ap[:-1] + bg[:1] + ap[-1:] + bg[1:]}


def main():
    rng = random.Random(5)
    cases = [(AP, BG)] + [([c * rng.uniform(0.8, 1.25) for c in AP], [c * rng.uniform(0.8, 1.25) for c in BG])
                          for _ in range(40)]
    for name in orders(AP, BG):
        ratios = []
        for ap, bg in cases:
            seq = orders(ap, bg)[name]
            if seq is None:
                wall = ordered_map(ap, *ordered_map(bg))[0]
            else:
                wall = ordered_map(seq)[0]
            ratios.append(wall / ((sum(ap) + sum(bg)) / 2))
        print(f"{name:46s} measured costs {100 * (ratios[0] - 1):4.1f} %   perturbed median "
              f"{100 * (statistics.median(ratios[1:]) - 1):4.1f} % over the ideal")


if __name__ == "__main__":
    main()
