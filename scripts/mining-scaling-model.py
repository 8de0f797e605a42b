#!/usr/bin/env python3
"""A discrete-event simulation of `mpirun lode mine` on many nodes (issue 18; BENCHMARKS.md "Mining across processes").

    python3 scripts/mining-scaling-model.py [--events E] [--shard-size S] [--rate R] [--cores C] [--rtt L]
                                            [--service D] [--row-bytes B] [--fs-bandwidth W] [--concat-bandwidth K]
                                            [--jitter J] [--nodes N,N,...]

It replays lode's scheduler (runtime/mining/mpi/mpi_scheduler.cpp): every worker thread of every node asks rank 0 for
the next shard when it is free (one round trip of L seconds; rank 0 answers requests one at a time, D seconds each, and
polls every millisecond, so an answer waits up to 1 ms more), mines its S events at R events/s per core (each shard's
time multiplied by a random factor in [1 - J, 1 + J]: nodes and events differ), then writes the shard (S * B bytes) to
the shared file system, whose bandwidth W is shared by every writer at that moment, plus a fixed F seconds per shard
(creating, fsync-ing and renaming its files). At the end rank 0 alone concatenates
the shards (E * B bytes of dataset at K bytes/s: read once, written once). Prints, per node count, the mining phase, the concatenation,
the total, the speed-up over one node and the efficiency. The defaults are this machine's measurements for galton
--for ratio (BENCHMARKS.md: 0.38 M events/s per core, 7 ms per shard, concatenation 0.4 GB/s) and a modest cluster:
32 cores per node, 50 us round trips, a 5 GB/s parallel file system.
"""
import argparse
import heapq
import random


def simulate(nodes, a):
    workers = nodes * a.cores
    shards = (a.events + a.shard_size - 1) // a.shard_size
    rng = random.Random(1)
    next_shard = 0
    leader_free = 0.0  # when rank 0 can answer the next request
    heap = [(0.0, w) for w in range(workers)]  # (time a worker asks, worker)
    heapq.heapify(heap)
    writing = []  # end times of writes in progress (shared bandwidth, approximated per write)
    end = 0.0
    while heap:
        t, w = heapq.heappop(heap)
        arrive = t + a.rtt / 2 + (0.0005 if w >= a.cores else 0.0)  # remote requests wait for rank 0's poll
        served = max(arrive, leader_free) + a.service
        leader_free = served
        back = served + a.rtt / 2
        if next_shard >= shards:
            end = max(end, back)
            continue
        k = next_shard
        next_shard += 1
        n = min(a.shard_size, a.events - k * a.shard_size)
        mine = n / a.rate * (1 + a.jitter * (2 * rng.random() - 1))
        writing = [e for e in writing if e > back + mine]
        bw = a.fs_bandwidth / (len(writing) + 1)
        done = back + mine + n * a.row_bytes / bw + a.shard_cost
        writing.append(done)
        heapq.heappush(heap, (done, w))
    concat = a.events * a.row_bytes / a.concat_bandwidth
    return end, concat


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=float, default=1e9)
    p.add_argument("--shard-size", type=int, default=100000)
    p.add_argument("--rate", type=float, default=3.8e5, help="events/s per core (galton ratio mining, measured)")
    p.add_argument("--cores", type=int, default=32)
    p.add_argument("--rtt", type=float, default=50e-6, help="request/reply round trip, s")
    p.add_argument("--service", type=float, default=20e-6, help="rank 0's time per request, s")
    p.add_argument("--row-bytes", type=float, default=56, help="bytes per row (galton ratio: 7 float64)")
    p.add_argument("--fs-bandwidth", type=float, default=5e9, help="shared file system, bytes/s (all writers)")
    p.add_argument("--concat-bandwidth", type=float, default=0.4e9, help="rank 0 alone, dataset bytes/s (measured)")
    p.add_argument("--shard-cost", type=float, default=7e-3, help="fixed cost per shard, s (files, fsync; measured)")
    p.add_argument("--jitter", type=float, default=0.2)
    p.add_argument("--nodes", default="1,2,4,8,16,32,64,128,256")
    a = p.parse_args()
    a.events = int(a.events)
    print(f"{a.events:.3g} events, shards of {a.shard_size}, {a.rate:.3g} events/s per core, {a.cores} cores per node, "
          f"round trip {a.rtt * 1e6:.0f} us, {a.row_bytes:.0f} B/row, file system {a.fs_bandwidth / 1e9:.1f} GB/s, "
          f"concatenation {a.concat_bandwidth / 1e9:.1f} GB/s\n")
    print("| nodes | mining (s) | concatenation (s) | total (s) | speed-up (mining) | speed-up (total) | efficiency (total) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    base = None
    for n in [int(v) for v in a.nodes.split(",")]:
        mine, concat = simulate(n, a)
        total = mine + concat
        if base is None:
            base = (mine, total, n)
        print(f"| {n} | {mine:.1f} | {concat:.1f} | {total:.1f} | {base[0] / mine * base[2]:.1f} | "
              f"{base[1] / total * base[2]:.1f} | {base[1] / total * base[2] / n:.2f} |")


if __name__ == "__main__":
    main()
