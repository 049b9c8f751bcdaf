from bench.loop_stretches import KEEP, KEEP_ITERATIONS, Stretches, bucket


def test_a_callback_falls_in_the_first_bucket_it_does_not_exceed() -> None:
    assert bucket(0.1) == "<=0.25ms"
    assert bucket(0.25) == "<=0.25ms"
    assert bucket(1.5) == "<=2ms"
    assert bucket(64.0) == "<=64ms"
    assert bucket(64.1) == ">64ms"


def test_the_summary_counts_every_callback_and_keeps_the_longest_in_order() -> None:
    stretches = Stretches()
    for i in range(KEEP + 10):
        cpu_s = (i + 1) / 10_000  # 0.1 ms .. 5 ms
        where = f"at {i}" if stretches.needs_where(cpu_s) else None
        stretches.add(cpu_s, cpu_s * 2, where)
    summary = stretches.summary()
    assert summary["callbacks"] == KEEP + 10 == sum(summary["by_cpu"].values())
    longest = summary["longest"]
    assert len(longest) == KEEP
    cpu_ms = [entry["cpu_ms"] for entry in longest]
    assert cpu_ms == sorted(cpu_ms, reverse=True)
    assert longest[0] == {"cpu_ms": 5.0, "wall_ms": 10.0, "where": f"at {KEEP + 9}"}
    assert min(entry["cpu_ms"] for entry in longest) == 1.1  # the ten shortest left out


def test_the_summary_keeps_the_busiest_turns_of_the_loop_with_their_callbacks() -> None:
    stretches = Stretches()
    for i in range(KEEP_ITERATIONS + 5):
        stretches.add_iteration((i + 1) / 1000, i + 1, 0.0005)  # 1 ms .. 15 ms, 1 .. 15 callbacks
    summary = stretches.summary()
    assert summary["iterations"] == KEEP_ITERATIONS + 5
    busiest = summary["busiest_iterations"]
    assert len(busiest) == KEEP_ITERATIONS
    assert busiest[0] == {"cpu_ms": 15.0, "callbacks": 15, "longest_callback_ms": 0.5}
    assert [entry["cpu_ms"] for entry in busiest] == [float(ms) for ms in range(15, 5, -1)]
