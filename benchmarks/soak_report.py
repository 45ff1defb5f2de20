"""The soak's results as Markdown, for the README's "Reliability" section."""

from __future__ import annotations

from typing import Any

__all__ = ["render_markdown"]


def _mb(count: float) -> str:
    return f"{count / 1e6:.1f} MB"


def render_markdown(results: dict[str, Any]) -> str:
    """A short report: verdict, invariants, faults, retries, logins, wall time, setup."""
    plan = results["plan"]
    batch = results["batch"]
    integrity = results["integrity"]
    faults = results["faults"]
    retries = results["retries"]
    logins = results["logins"]
    concurrency = results["concurrency"]
    soak = results["soak"]
    rerun = results["idempotent_rerun"]
    verdict = "all invariants held" if results["ok"] else "INVARIANTS BROKEN"
    kinds = ", ".join(f"{kind} {count}" for kind, count in faults["fired_by_kind"].items())
    triggers = ", ".join(f"{name} {count}" for name, count in soak["kills_by_trigger"].items())
    log = retries["client_log"]
    machine = results["machine"]
    lines = [
        f"## Soak ({results['mode']}): {verdict}",
        "",
        f"`{results['command']}` on {results['date']}; {machine['platform']}, "
        f"{machine['cpus']} CPUs, Python {machine['python']}; seed {results['seed']}.",
        "",
        f"{batch['products']} products ({_mb(batch['bytes'])}; "
        + ", ".join(f"{name} {count}" for name, count in batch["collections"].items())
        + f"; {batch['legacy_without_checksum']} without a catalogue checksum) through the "
        f"CDSE emulator on loopback, the client a `sentinel-fetch download` subprocess, "
        f"killed with SIGKILL {soak['kills']} times ({triggers}) and rerun until done.",
        "",
        "| Invariant | Result |",
        "|---|---|",
        f"| products verified in Finish (size + BLAKE3 of the served bytes) | "
        f"{integrity['verified']} / {batch['products']} |",
        f"| corrupt files in Finish (checked after every kill and at the end) | "
        f"{integrity['corrupt_in_finish']} |",
        f"| products lost | {integrity['lost']} |",
        f"| products given up on in some run (transient faults only) | "
        f"{soak['products_failed_in_a_run']} |",
        f"| most concurrent product streams seen by the emulator | "
        f"{concurrency['peak_streams']} (limit {concurrency['limit']}) |",
        f"| logins used / budget | {logins['used']} / {logins['budget']} |",
        f"| rerun after completion: product requests, bytes | "
        f"{rerun['product_requests']}, {rerun['bytes_served']} |",
        "",
        f"Faults: {faults['injected_on_product_requests']} injected on "
        f"{faults['product_requests']} product requests ({faults['injected_rate']:.1%}; "
        f"target {faults['rate_target']:.0%}; {faults['effective_rate']:.1%} without the "
        f"{faults['ignore_range_without_effect']} ignore_range drawn for requests that had no "
        "Range), plus one-off faults on the identity and "
        f"catalogue hosts and redirects. Fired: {kinds}. Range requests answered with a "
        f"full 200: {retries['range_answered_with_200']}.",
        "",
        f"Retries: {retries['extra_product_requests']} product requests beyond one per "
        f"product ({retries['resumes_with_range']} resumed with Range); "
        f"{_mb(retries['bytes_served'])} served for {_mb(batch['bytes'])} "
        f"(x{retries['bytes_served_vs_batch']}). Client logs: "
        f"{log['transfer_retries']} transfer retries, {log['token_refused']} refused tokens "
        f"refreshed, {log['identity_retries']} identity retries.",
        "",
        f"Logins: {logins['used']} for {logins['client_processes']} client processes and "
        f"{logins['sessions_ended_by_faults']} sessions ended by faults "
        f"({logins['refreshes']} token refreshes, {logins['failed']} refused logins). "
        "CDSE counts one session per login and a refresh window lasts 60 minutes, so the "
        "budget is one login per process per hour of work (a killed process takes its "
        "token with it: tokens are never written to disk) plus one per ended session.",
        "",
        f"Wall time: {soak['wall_s']:.1f} s with faults and kills against "
        f"{results['baseline']['wall_s']:.1f} s for the same batch without "
        f"(x{soak['wall_vs_baseline']}); bandwidth cap "
        f"{_mb(plan['bandwidth_bytes_per_s'])}/s per connection; "
        f"{results['total_wall_s']:.0f} s in all.",
    ]
    if integrity["ledger_skipped_not_done"]:
        lines += [
            "",
            f"Ledger: {integrity['ledger_skipped_not_done']} product(s) renamed into Finish "
            "just before a kill are recorded `skipped` by the rerun instead of `done` (their "
            "files are verified above).",
        ]
    odd = integrity["legacy_metadata_differences"]
    if odd:
        lines += [
            "",
            f"Not counted above: {len(odd)} product(s) without a catalogue checksum whose zip "
            "metadata differs from the served bytes while every file inside is intact; the "
            "zip CRC test, the only check possible without a checksum, cannot see this.",
        ]
    if results["violations"]:
        lines += ["", "Violations:", *(f"- {violation}" for violation in results["violations"])]
    return "\n".join(lines) + "\n"
