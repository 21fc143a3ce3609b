"""The `framing` command: parse options, call one library function, render the result.

Errors are translated here and only here: one line on stderr, a non-zero exit code,
no traceback (unless --debug). Heavy libraries load inside the commands that use them.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError  # typer 0.29 vendors click
from typer.core import TyperGroup

from .errors import FramingError
from .options import BadLines, ScoreOptions


class Engine(StrEnum):
    local = "local"
    ray = "ray"


class ParagraphsFormat(StrEnum):  # mirrors framing.engine_ray.Format, which imports Ray
    jsonl = "jsonl"
    parquet = "parquet"


class Method(StrEnum):  # mirrors framing.prevalence.Method, which needs NumPy: --help stays fast
    cc = "cc"
    pcc = "pcc"
    acc = "acc"
    pacc = "pacc"
    em = "em"


_SCORE = ScoreOptions()
_READ = _SCORE.read

class _OneLineErrors(TyperGroup):
    """Usage errors (a bad option value, a missing argument) as one stderr line, like every other error."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as error:
            if not standalone_mode:
                raise
            error.show()
            sys.exit(error.exit_code)
        except ClickException as error:
            if not standalone_mode:
                raise
            where = f"; see `{error.ctx.command_path} --help`" if getattr(error, "ctx", None) else ""
            typer.echo(f"framing: error: {error.format_message().rstrip('.')}{where}", err=True)
            sys.exit(error.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            typer.echo("framing: error: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(help="Measure how news outlets frame Russia, China and the West, paragraph by paragraph.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, cls=_OneLineErrors)
EXIT_INTERRUPTED = 130
_DISK_ERRORS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EPERM}
EXIT_INTERNAL = 1


class _State:
    debug = False
    quiet = False


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; unwinding lets atomic writers discard their temporary files."""


_MAIN_PID = os.getpid()


def _interrupt(signum, frame):
    if os.getpid() != _MAIN_PID:  # a forked worker (a library's pool) inherited the handler: die quietly
        os._exit(128 + signum)
    raise Interrupted(signal.Signals(signum).name)


# The library's errors name the setting they are about; the CLI names its flag.
FLAG_HINTS = {"model": "train one with `framing train`, or pass --model", "out": "--out", "labels": "--labels",
              "predictions": "--predictions", "aliases": "--aliases",
              "force": "--force to overwrite", "cache": "--cache-dir, or --no-cache", "bad_lines": "--bad-lines skip",
              "max_bytes": "--max-bytes", "scheme": "--scheme", "reports": "--reports",
              "baseline": "--baseline", "engine": "--engine"}


def fail(message: str, code: int) -> None:
    typer.echo(f"framing: error: {message}", err=True)
    raise typer.Exit(code)


def _with_hint(error: FramingError) -> str:
    hint = FLAG_HINTS.get(error.option or "")
    return f"{error} ({hint})" if hint else str(error)


@contextmanager
def errors_translated():
    """Turn library errors, interrupts and surprises into one stderr line and an exit code."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    except FramingError as error:
        if _State.debug:
            raise
        fail(_with_hint(error), error.exit_code)
    except (KeyboardInterrupt, Interrupted):
        fail("interrupted; nothing was half-written: earlier reports and models are as they were",
             EXIT_INTERRUPTED)
    except typer.Exit:
        raise
    except OSError as error:  # a write the library did not wrap: still the user's disk, not a bug
        if _State.debug or error.errno not in _DISK_ERRORS:
            fail(f"unexpected OSError: {error} (rerun with --debug for the traceback and report it)", EXIT_INTERNAL)
        fail(f"cannot write ({os.strerror(error.errno)}); free space or choose another folder", 5)
    except Exception as error:  # a bug: say so in one line, keep the traceback for --debug
        if _State.debug:
            raise
        fail(f"unexpected {type(error).__name__}: {error} (rerun with --debug for the traceback and report it)",
             EXIT_INTERNAL)
    finally:
        signal.signal(signal.SIGTERM, previous)


def warn(message: str) -> None:
    typer.echo(f"framing: warning: {message}", err=True)


def say(message: str) -> None:
    if not _State.quiet:
        typer.echo(message, err=True)


class _Bars:
    """tqdm progress bars on stderr, one per stage, created when a stage first reports."""

    def __init__(self) -> None:
        self.bars: dict = {}

    def __call__(self, stage: str, n: int) -> None:
        if _State.quiet:
            return
        if stage not in self.bars:
            from tqdm import tqdm

            unit = {"read": "doc", "embed": "para", "report": "step"}.get(stage, "it")
            self.bars[stage] = tqdm(desc=f"{stage:>6}", unit=unit, file=sys.stderr, leave=False,
                                    dynamic_ncols=True, disable=None)  # None: no bar when stderr is not a terminal
        self.bars[stage].update(n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"framing {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback when something fails.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or status lines on stderr.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    _State.debug, _State.quiet = debug, quiet


CacheDirOpt = Annotated[Optional[Path], typer.Option("--cache-dir", envvar="FRAMING_CACHE_DIR",
                                                     help="Embedding cache folder (default: the user cache folder, "
                                                          "e.g. ~/.cache/framing).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the embedding cache.")]


def _cache_options(cache_dir: Optional[Path], no_cache: bool):
    from .options import CacheOptions

    return CacheOptions(enabled=not no_cache, folder=cache_dir)


LabelsOpt = Annotated[Path, typer.Option("--labels", help="Labelled set: a JSONL file, or a folder of *.jsonl "
                                         "files with scheme.json.")]
ModelOpt = Annotated[Path, typer.Option("--model", help="Model folder (written by `framing train`).")]


@app.command()
def train(
    labels: LabelsOpt = Path("labels"),
    model: ModelOpt = Path("models/default"),
    embedder: Annotated[str, typer.Option("--embedder", help="sentence-transformers model name or local path; "
                                          "default: the packaged all-MiniLM-L6-v2.")] = "default",
    scheme: Annotated[Optional[Path], typer.Option("--scheme", help="Label scheme JSON; default: scheme.json "
                                                   "beside or inside --labels.")] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Cross-validation folds.")] = 5,
    fast_embedder: Annotated[Optional[str], typer.Option("--fast-embedder", help="Also train the fast path on this "
                                                         "static embedder (make fast-embedder builds one).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON on stdout.")] = False,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Validate the labelled set, cross-validate, fit the classifier and save the model."""
    from .classify import HeadOptions
    from .pipeline import make_embedder
    from .pipeline import train as run_train

    with errors_translated():
        cache = _cache_options(cache_dir, no_cache)
        result = run_train(labels, model, make_embedder(embedder, cache, warn=warn), HeadOptions(n_folds=folds),
                           scheme, fast_embedder=make_embedder(fast_embedder, cache, warn=warn) if fast_embedder
                           else None)
    if json_out:
        typer.echo(json.dumps({"model": str(result.model_dir), "counts": result.counts,
                               "real_copy": result.real_copy.to_dict() if result.real_copy else None,
                               "grouped": result.grouped.to_dict(),
                               "seconds": result.seconds}, indent=2))
        return
    typer.echo(f"labelled paragraphs: {sum(result.counts.values())} "
               f"({', '.join(f'{k} {v}' for k, v in result.counts.items())}); {result.n_groups} outlet/batch groups")
    real = result.real_copy
    if real:
        low, high = real.macro_f1_interval
        typer.echo(_metrics_text(f"On real articles held out of training ({real.n_articles} articles, each in turn; "
                                 f"macro-F1 95% interval {low:.3f}-{high:.3f}; temperature {real.temperature:.2f})",
                                 real.metrics))
    else:
        typer.echo("\nNo real articles (source: seed or user) in the labelled set: quality on real copy is unmeasured")
    typer.echo(_metrics_text("Grouped CV over outlets and authoring batches (mostly authored copy: it flatters)",
                             result.grouped))
    if result.fast is not None:
        chosen = result.fast.oof["chosen_on"]
        where = ("held-out real copy" if chosen["sources"] != "all" else "all labelled rows (there is no real copy)")
        typer.echo(f"\nfast path: MiniLM re-scores paragraphs whose static margin is below {result.fast.threshold:.3f}"
                   f" (chosen on {where}: at most 0.01 macro-F1 below MiniLM there, re-scoring "
                   f"{chosen['share_rescored']:.0%} of it)")
    typer.echo(f"saved {result.model_dir} in {result.seconds['total']:.1f} s")


def _metrics_text(title: str, metrics) -> str:
    labels = metrics.labels
    width = max(len(label) for label in labels)
    lines = [f"\n{title}: macro-F1 {metrics.macro_f1:.3f}, expected calibration error {metrics.ece:.3f}",
             f"  {'label'.ljust(width)}  precision  recall     f1  support"]
    for label in labels:
        m = metrics.per_label[label]
        lines.append(f"  {label.ljust(width)}  {m['precision']:9.3f}  {m['recall']:6.3f}  {m['f1']:5.3f}  "
                     f"{m['support']:7d}")
    lines.append("  confusion (rows: true, columns: predicted)")
    lines.append("  " + " " * width + "  " + "  ".join(label[:12].rjust(12) for label in labels))
    for label, row in zip(labels, metrics.confusion):
        lines.append(f"  {label.ljust(width)}  " + "  ".join(str(v).rjust(12) for v in row))
    return "\n".join(lines)


@app.command()
def score(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to score (.txt, .md, .html, .jsonl; "
                                                "folders recursively).")],
    model: ModelOpt = Path("models/default"),
    out: Annotated[Path, typer.Option("--out", help="Folder for the reports (created; other files in it are "
                                      "left alone).")] = Path("reports"),
    bad_lines: Annotated[BadLines, typer.Option("--bad-lines", help="Malformed JSONL lines: fail the run, or skip "
                                                "them with a warning.")] = BadLines(_READ.bad_lines),
    max_bytes: Annotated[int, typer.Option("--max-bytes", min=1, help="Skip an article (a file, or one JSONL or "
                                           "Parquet record) larger than this.")] = _READ.max_bytes,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Paragraphs embedded per batch.")]
    = _SCORE.batch_size,
    include_off_topic: Annotated[bool, typer.Option("--include-off-topic", help="Count paragraphs about something "
                                                    "else (marked off_topic) in the shares.")] = False,
    include_other_languages: Annotated[bool, typer.Option("--all-languages", help="Count non-English paragraphs "
                                                          "in the shares of an English-only model.")] = False,
    method: Annotated[Optional[Method], typer.Option("--method", help="How shares are corrected for the "
                                                     "classifier's errors (default: acc).")] = None,
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="Compare every outlet with this one.")]
    = None,
    engine: Annotated[Engine, typer.Option("--engine", help="local, or ray: run on a Ray cluster (needs "
                                           "the ray extra: make ray).")] = Engine.local,
    address: Annotated[Optional[str], typer.Option("--address", help="Ray cluster address (ray://host:10001 or "
                                                   "auto); default: start a local cluster.")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Ray engine: embedding actors (one GPU each "
                                         "where the cluster has GPUs).")] = 2,
    paragraphs_format: Annotated[ParagraphsFormat, typer.Option("--format", help="paragraphs as jsonl, or "
                                                                "parquet (Ray engine).")] = ParagraphsFormat.jsonl,
    fast: Annotated[bool, typer.Option("--fast", help="Score with the fast path (static model, MiniLM for the "
                                       "uncertain paragraphs); train it with --fast-embedder.")] = False,
    fast_threshold: Annotated[Optional[float], typer.Option("--fast-threshold", help="With the "
                              "fast path, re-score paragraphs whose static margin is below this instead of the "
                              "trained threshold: 0 = the static model alone, 1 = the full model (implies "
                              "--fast).")] = None,
    fast_budget: Annotated[Optional[float], typer.Option("--fast-budget", help="With the fast path, re-score "
                           "about this share of paragraphs: the threshold at which that share of the real "
                           "labelled paragraphs went to the full model at training (0.02: about 10x MiniLM's "
                           "speed; implies --fast).")] = None,
    aliases: Annotated[Optional[Path], typer.Option("--aliases", help="CSV of outlet spellings (columns name, "
                                                    "canonical) to merge into one outlet.")] = None,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Score every paragraph and write per-paragraph and per-outlet reports."""
    from dataclasses import replace

    from .pipeline import score_paths

    if fast_threshold is not None and not 0 <= fast_threshold <= 1:  # NaN fails too
        fail(f"--fast-threshold must be between 0 and 1, not {fast_threshold}", 2)
    if fast_budget is not None and not 0 <= fast_budget <= 1:
        fail(f"--fast-budget must be a share between 0 and 1, not {fast_budget}", 2)
    if fast_budget is not None and fast_threshold is not None:
        fail("give --fast-threshold or --fast-budget, not both: each sets the cascade's threshold", 2)
    options = ScoreOptions(read=replace(_READ, bad_lines=bad_lines, max_bytes=max_bytes, aliases=aliases),
                           cache=_cache_options(cache_dir, no_cache), batch_size=batch_size,
                           include_off_topic=include_off_topic, include_other_languages=include_other_languages,
                           method=method.value if method else None, baseline=baseline,
                           fast=fast, fast_threshold=fast_threshold,
                           fast_budget=fast_budget)  # a threshold or a budget implies the fast path
    bars = _Bars()
    with errors_translated():
        try:
            if engine is Engine.ray:
                from .engine_ray import score_paths_ray  # Ray loads only here

                result = score_paths_ray(paths, model, out, options, address=address, workers=workers,
                                         batch_size=batch_size, format=paragraphs_format.value, progress=bars,
                                         warn=warn)
            else:
                if paragraphs_format is ParagraphsFormat.parquet:
                    fail("--format parquet needs --engine ray; the local engine writes paragraphs.jsonl", 2)
                result = score_paths(paths, model, out, options, progress=bars, warn=warn)
        finally:
            bars.close()
    typer.echo(result.table)
    left = {}
    for summary in result.summaries:
        for reason, n in summary.left_out.items():
            left[reason] = left.get(reason, 0) + n
    aside = "".join(f", {n} {reason.replace('_', ' ')} left out" for reason, n in sorted(left.items()))
    say(f"\n{result.n_paragraphs} paragraphs counted from {result.n_documents} documents "
        f"({result.n_dropped_lines} furniture lines dropped, {result.n_duplicates} repeated paragraphs counted once"
        f"{aside}) in {result.seconds:.1f} s; reports in {result.out_dir}/: {', '.join(result.files)}")


@app.command()
def evaluate(
    file: Annotated[Path, typer.Argument(help="Labelled JSONL: one paragraph per record with 'text' and 'label' "
                                         "(and optional 'id').")],
    model: ModelOpt = Path("models/default"),
    predictions: Annotated[Optional[Path], typer.Option("--predictions", help="Write id, text, gold label, "
                                                        "predicted label and scores per record to this new JSONL "
                                                        "file.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --predictions file.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON on stdout.")] = False,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Compare the model's labels with a labelled file, record by record."""
    from .pipeline import evaluate as run_evaluate

    with errors_translated():
        result = run_evaluate(file, model, predictions, cache=_cache_options(cache_dir, no_cache), force=force,
                              warn=warn)
    if json_out:
        typer.echo(json.dumps(dict(result.metrics.to_dict(), n=result.n, absent_labels=list(result.absent_labels),
                                   in_training=result.n_in_training), indent=2))
        return
    typer.echo(_metrics_text(f"{result.n} records", result.metrics))
    if result.absent_labels:
        typer.echo(f"\nmacro-F1 averages the labels present in the file; no paragraph is labelled "
                   f"{', '.join(result.absent_labels)}")


labels_app = typer.Typer(help="Work on the labelled set.", no_args_is_help=True)
app.add_typer(labels_app, name="labels")


@labels_app.command("audit")
def labels_audit(
    labels: LabelsOpt = Path("labels"),
    embedder: Annotated[str, typer.Option("--embedder", help="Embedder name or path (default: packaged MiniLM).")]
    = "default",
    limit: Annotated[int, typer.Option("--limit", min=0, help="Show at most this many (0: all).")] = 30,
    json_out: Annotated[bool, typer.Option("--json", help="Print every issue as a JSON line on stdout.")] = False,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """List labelled paragraphs whose label the model disagrees with (out-of-fold), for human review.

    Nothing is changed: edit the labelled files by hand for the ones you agree with, then retrain."""
    from .pipeline import audit_labels, make_embedder

    with errors_translated():
        issues = audit_labels(labels, make_embedder(embedder, _cache_options(cache_dir, no_cache), warn=warn))
    shown = issues[:limit] if limit else issues
    if json_out:
        for issue in shown:
            typer.echo(json.dumps(issue.__dict__, ensure_ascii=False))
        return
    typer.echo(f"{len(issues)} paragraphs whose label the out-of-fold model doubts; most suspicious first:\n")
    for issue in shown:
        typer.echo(f"{issue.where}  {issue.given} ({issue.p_given:.2f}) -> suggested {issue.suggested} "
                   f"({issue.p_suggested:.2f})\n    {issue.text[:300]}\n")


cache_app = typer.Typer(help="Inspect or empty the embedding cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("info")
def cache_info(cache_dir: CacheDirOpt = None) -> None:
    """Where the cache is, how big, and how many vectors per embedder."""
    from .cache import EmbeddingCache

    with errors_translated():
        info = EmbeddingCache(cache_dir, warn).info()
    typer.echo(f"cache: {info['path']}\nsize: {info['bytes'] / 1e6:.1f} MB")
    for name, n in sorted(info["entries"].items()):
        typer.echo(f"  {n:>9,} vectors  {name}")
    if not info["entries"]:
        typer.echo("  (empty)")


@cache_app.command("clear")
def cache_clear(cache_dir: CacheDirOpt = None) -> None:
    """Delete every cached embedding (they are recomputed when needed)."""
    from .cache import EmbeddingCache

    with errors_translated():
        n = EmbeddingCache(cache_dir, warn).clear()
    typer.echo(f"removed {n:,} cached vectors")


@app.command()
def report(
    paragraphs: Annotated[Path, typer.Argument(help="paragraphs.jsonl of a scoring run (documents.jsonl beside it).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for the rebuilt reports (default: the run's "
                                                "folder).")] = None,
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="Compare every outlet with this one.")]
    = None,
) -> None:
    """Rebuild every report from saved scores, without loading a model or an embedder."""
    from .pipeline import report_paragraphs

    with errors_translated():
        result = report_paragraphs(paragraphs, out, ScoreOptions(baseline=baseline))
    typer.echo(result.table)
    say(f"\nreports in {result.out_dir}/: {', '.join(result.files)}")


@app.command()
def compare(
    a: Annotated[str, typer.Argument(help="An outlet, as named in the reports.")],
    b: Annotated[str, typer.Argument(help="Another outlet.")],
    reports: Annotated[Path, typer.Option("--reports", help="Folder of a scoring run's reports.")] = Path("reports"),
) -> None:
    """Print the difference in prevalence between two outlets, from saved reports (no model is loaded)."""
    from .report import load_comparisons

    with errors_translated():
        rows = load_comparisons(reports, a, b)
    for row in rows:
        flag = "  *" if row["excludes_zero"] else ""
        typer.echo(f"{row['label']:<20} {row['difference']:+7.1%}  [{row['ci'][0]:+.1%}, {row['ci'][1]:+.1%}]{flag}")
    typer.echo(f"\n{a} minus {b}; 95% intervals; * where the interval excludes zero")


from .labelcli import register as _register_labelling  # noqa: E402  (typer and the standard library only)

_register_labelling(app, labels_app)  # `label`, `suggest` and `labels import`
