"""A benchmark's results as JSON, Markdown and HTML, written next to the plot."""

from __future__ import annotations

import html
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from shipyard.bench.load import LoadResult
from shipyard.bench.recommend import Recommendation

__all__ = ["BenchReport"]


@dataclass
class BenchReport:
    target: str
    started: str
    sizes: list[LoadResult] = field(default_factory=list)
    sweep: list[LoadResult] = field(default_factory=list)
    recommendation: Recommendation = field(default_factory=Recommendation)
    environment: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def machine() -> dict[str, Any]:
        load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
        return {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "client_cpus": os.cpu_count(),
            "load_average_1m": round(load[0], 2),
        }

    # -- tables ----------------------------------------------------------------------------------
    def size_rows(self) -> list[dict[str, Any]]:
        rows = []
        for result in self.sizes:
            ok = sorted(s.seconds for s in result.ok)
            median = result.latency_ms(50)
            rows.append(
                {
                    "items": result.items_per_request,
                    "requests": len(result.samples),
                    "median_ms": None if median is None else round(median, 1),
                    "min_ms": round(ok[0] * 1000, 1) if ok else None,
                    "max_ms": round(ok[-1] * 1000, 1) if ok else None,
                    "spread_ms": round((ok[-1] - ok[0]) * 1000, 1) if ok else None,
                    "items_per_s": round(result.items_per_request / (median / 1000), 1) if median else None,
                    "errors": result.errors,
                }
            )
        return rows

    def sweep_rows(self) -> list[dict[str, Any]]:
        return [result.summary() for result in self.sweep]

    def headline(self) -> dict[str, float | None]:
        """The figures a deployment keeps of its last bench (its latency alarm and ``expose``'s checks read
        them): p50 and p99 at the recommended concurrency (else the sweep's busiest level), the slowest answer
        of the whole run, and the highest sustained request rate. Empty when nothing answered."""
        answered = [result for result in (*self.sizes, *self.sweep) if result.ok]
        if not answered:
            return {}
        levels = [result for result in self.sweep if result.ok]
        chosen = next((r for r in levels if r.level == self.recommendation.concurrency), None)
        if chosen is None:
            chosen = max(levels, key=lambda r: r.requests_per_s) if levels else answered[-1]
        slowest = max(sample.seconds for result in answered for sample in result.ok)
        p50, p99 = chosen.latency_ms(50), chosen.latency_ms(99)
        return {
            "p50_ms": None if p50 is None else round(p50, 1),
            "p99_ms": None if p99 is None else round(p99, 1),
            "max_ms": round(slowest * 1000, 1),
            "rps": self.recommendation.max_rps or (round(max(r.requests_per_s for r in levels), 2) if levels else None),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "started": self.started,
            "environment": self.environment,
            "sizes": self.size_rows(),
            "sweep": self.sweep_rows(),
            "recommendation": self.recommendation.to_dict(),
        }

    # -- renderings ------------------------------------------------------------------------------
    def tables(self) -> list[tuple[str, list[str], list[list[str]]]]:
        """(title, header, rows) of every table, shared by Markdown, HTML and the CLI."""
        out = []
        if self.sizes:
            header = ["items per request", "median ms", "min ms", "max ms", "spread ms", "items/s", "errors"]
            body = [
                [
                    str(r["items"]),
                    _num(r["median_ms"]),
                    _num(r["min_ms"]),
                    _num(r["max_ms"]),
                    _num(r["spread_ms"]),
                    _num(r["items_per_s"]),
                    _errs(r["errors"]),
                ]
                for r in self.size_rows()
            ]
            out.append(("One request with N items", header, body))
        if self.sweep:
            level = "concurrency" if self.sweep[0].mode == "closed" else "offered req/s"
            header = [level, "items/req", "requests", "req/s", "items/s", "p50 ms", "p95 ms", "p99 ms", "errors"]
            body = [
                [
                    _num(r["level"]),
                    str(r["items_per_request"]),
                    str(r["requests"]),
                    _num(r["req_per_s"]),
                    _num(r["items_per_s"]),
                    _num(r["p50_ms"]),
                    _num(r["p95_ms"]),
                    _num(r["p99_ms"]),
                    _errs(r["errors"]),
                ]
                for r in self.sweep_rows()
            ]
            title = "Concurrency sweep (closed loop)" if level == "concurrency" else "Arrival-rate sweep (open loop)"
            out.append((title, header, body))
        return out

    def recommendation_lines(self) -> list[str]:
        rec = self.recommendation
        lines = []
        if rec.items_per_request:
            lines.append(f"Items per request: **{rec.items_per_request}** ({rec.items_per_request_why}).")
        if rec.max_rps is not None:
            lines.append(
                f"Max sustainable load: **{rec.max_rps:g} req/s** ({rec.max_items_per_s:g} items/s) with p99 within "
                f"{rec.slo_p99_ms:g} ms and no errors"
                + (f", reached at concurrency {rec.concurrency}." if rec.concurrency else ".")
            )
        lines.append(f"Workers: {rec.workers}.")
        if rec.instance_type:
            lines.append(
                f"SageMaker: **{rec.instance_count} × {rec.instance_type}** for a peak of {rec.peak_rps:g} req/s "
                f"(≈ {rec.capacity_rps_per_instance:g} req/s per instance, {rec.safety:.0%} headroom), "
                f"**${rec.hourly_usd:.3f}/hour** ({rec.price_label})."
            )
            lines.append(
                f"Autoscaling: target tracking on SageMakerVariantInvocationsPerInstance = **{rec.autoscaling_target}**"
                f" per minute ({rec.capacity_rps_per_instance:g} req/s × {rec.safety:g} × 60)."
            )
        if rec.deploy_command and rec.safety == 0.5:  # deploy's --max-rps assumes the usual 0.5
            lines.append(f"Deploy: `{rec.deploy_command}`")
        lines.extend(f"Note: {note}." if not note.endswith(".") else f"Note: {note}" for note in rec.notes)
        return lines

    def to_markdown(self, plot_name: str | None = None) -> str:
        parts = [f"# Benchmark of {self.target}", "", f"Started {self.started}; {_env(self.environment)}.", ""]
        for title, header, rows in self.tables():
            parts += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            parts += ["| " + " | ".join(row) + " |" for row in rows]
            parts.append("")
        if plot_name:
            parts += [f"![latency and throughput]({plot_name})", ""]
        parts += ["## Recommendation", ""] + [f"- {line}" for line in self.recommendation_lines()]
        return "\n".join(parts) + "\n"

    def to_html(self, plot_name: str | None = None) -> str:
        esc = html.escape
        parts = [
            "<!doctype html><meta charset='utf-8'>",
            f"<title>Benchmark of {esc(self.target)}</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style>",
            f"<h1>Benchmark of {esc(self.target)}</h1>",
            f"<p>Started {esc(self.started)}; {esc(_env(self.environment))}.</p>",
        ]
        for title, header, rows in self.tables():
            parts.append(f"<h2>{esc(title)}</h2><table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows]
            parts.append("</table>")
        if plot_name:
            parts.append(f"<p><img src='{esc(plot_name)}' alt='latency and throughput' width='100%'></p>")
        parts.append("<h2>Recommendation</h2><ul>")
        for line in self.recommendation_lines():
            text = esc(line)
            while "**" in text:  # the Markdown bold of the recommendation lines
                text = text.replace("**", "<b>", 1).replace("**", "</b>", 1)
            parts.append(f"<li>{text}</li>")
        parts.append("</ul>")
        return "\n".join(parts) + "\n"

    def write(self, directory: str | Path, *, plot: bool = True) -> dict[str, Path]:
        """Write report.json, report.md, report.html and (with matplotlib) bench.png into ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        plot_name = None
        if plot:
            from shipyard.bench.plot import draw

            paths["png"] = draw(self, out / "bench.png")
            plot_name = "bench.png"
        paths["json"] = out / "report.json"
        paths["json"].write_bytes(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2))
        paths["md"] = out / "report.md"
        paths["md"].write_text(self.to_markdown(plot_name))
        paths["html"] = out / "report.html"
        paths["html"].write_text(self.to_html(plot_name))
        return paths


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _errs(errors: dict[str, int]) -> str:
    return ", ".join(f"{code} ×{count}" for code, count in errors.items()) or "0"


def _env(environment: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in environment.items())
