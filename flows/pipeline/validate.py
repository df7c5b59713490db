"""Validate: each table's expectation suite over the slice's batches (one validation per table),
failing rows to quarantine, the batch gates, each validation's Data Docs page."""

from __future__ import annotations

from pathlib import Path

from flows import faults, schema
from flows.errors import BatchError
from flows.orchestration.progress import Progress
from flows.pipeline.state import LOG, Batch, Log, abandoned
from flows.quality.docs import DocPage, page_name, write_page
from flows.quality.gates import delivery_kind
from flows.quality.runner import validate_files
from flows.quality.screen import gate
from flows.settings import QualitySettings


def validate_slice(
    source: str,
    batches: list[Batch],
    gates: QualitySettings,
    previous: dict[tuple[str, str], int],
    docs_dir: Path,
    log: Log = LOG,
) -> list[Batch]:
    """Run each batch's expectation suite; split passing and quarantined rows; apply batch gates;
    write each validation's Data Docs page. Returns ``batches``, each with its outcome."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    by_table: dict[str, list[Batch]] = {}
    for b in batches:
        if b.frame is not None:
            by_table.setdefault(b.table_name, []).append(b)
    progress = Progress(f"validate {source}", len(by_table), "tables", log.info)
    # one validation per table: GE's cost per validation is fixed; a table counts once validated
    for name, group in progress.over(by_table.items()):
        if abandoned.is_set():  # the run stops: nobody will load this slice
            break
        frames = [b.frame for b in group if b.frame is not None]
        progress.rows += sum(f.height for f in frames)
        label = (
            group[0].file_name if len(group) == 1 else f"{group[0].file_name} and {len(group) - 1} more files"
        )
        try:
            results, ge_results = validate_files(frames, schema.table(source, name), label)
        except BatchError as err:
            for b in group:
                b.error = BatchError(b.file_name, err.rule, err.message)
            continue
        # one page per table and slice (validate_files merges its chunks' results); named by
        # the first file's hash: slices of a source (and pages of a members pull) share labels
        pages = [
            write_page(
                docs_dir / page_name(source, name, f"{label}.{group[0].sha256[:12]}", i),
                ge_result,
                run_id=docs_dir.parent.name,  # (the run folder's name: the run id)
                asset=label,
            )
            for i, ge_result in enumerate(ge_results)
        ]
        faults.checkpoint(f"validate.{source}")
        for b, result in zip(group, results, strict=True):
            assert b.frame is not None
            b.doc_pages += [
                DocPage(
                    b.source,
                    b.table_name,
                    b.file_name,
                    b.frame.height,
                    result.quarantined.height,
                    page.path,
                    page.validated_at,
                )
                for page in pages
            ]
            b.error = gate(
                result, b.file_name, gates, previous.get((b.table_name, delivery_kind(b.file_name)))
            )
            if b.error is not None:
                continue
            b.passed, b.quarantined = result.passed, result.quarantined
            if result.failures_by_rule:
                top = ", ".join(
                    f"{r}={n}" for r, n in sorted(result.failures_by_rule.items(), key=lambda x: -x[1])[:3]
                )
                log.info(
                    "validate %s %s: %d rows, %d quarantined (%s)",
                    b.file_name,
                    b.table_name,
                    b.frame.height,
                    result.quarantined.height,
                    top,
                )
    return batches
