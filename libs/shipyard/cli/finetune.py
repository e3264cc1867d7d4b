"""``shipyard finetune``: finetune a base model from a manifest or a one-line description, here or remotely.

``-f job.yaml`` takes a ``TrainingJob`` with ``type: finetune``; the one-liner (``--model``, ``--data``,
``--method`` ...) builds the same document, so both are validated by the same spec with the same field
paths. Either runs in embedded mode with ``shipyard train``'s progress bar and summary, plus the data
report (records kept and dropped, by reason) and the eval loss; ``--submit`` sends it to the training
service instead.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import click

from shipyard.cli import display
from shipyard.errors import InvalidArgument
from shipyard.training.spec import JobType, TrainingJob, load_training_job_file, parse_training_job

if TYPE_CHECKING:
    from rich.table import Table

    from shipyard.cli.main import CliContext
    from shipyard.training.trainer import TrainingResult

__all__ = ["finetune", "one_liner_job"]


@click.command("finetune")
@click.option(
    "-f", "--file", "path", type=click.Path(dir_okay=False), help="TrainingJob YAML (type: finetune)."
)
@click.option(
    "--model",
    help="Base model: a directory/URI, model:NAME[@VERSION], a .gguf file or smollm2-135m-instruct.",
)
@click.option(
    "--data", "data", help="Dataset file or directory (alpaca, sharegpt, messages, text, preference)."
)
@click.option(
    "--method", type=click.Choice(["lora", "qlora", "full", "dpo"]), default="lora", show_default=True
)
@click.option("--name", help="Job name (default: derived from the model and method).")
@click.option("--steps", type=int, default=100, show_default=True, help="Optimizer steps.")
@click.option(
    "--batch-size", type=int, default=8, show_default=True, help="Global batch (examples per step)."
)
@click.option("--micro-batch-size", type=int, default=4, show_default=True)
@click.option(
    "--lr", "learning_rate", type=float, default=2e-4, show_default=True, help="Peak learning rate."
)
@click.option("--max-seq-len", type=int, default=512, show_default=True)
@click.option("--lora-r", type=int, default=8, show_default=True)
@click.option("--lora-alpha", type=float, default=16.0, show_default=True)
@click.option("--target-modules", help="Comma-separated module names (default: all linear projections).")
@click.option("--chat-template", help="chatml, llama-3, zephyr, mistral (default: the tokenizer's).")
@click.option("--format", "data_format", default="auto", show_default=True, help="Dataset record format.")
@click.option("--packing", is_flag=True, help="Pack several examples into each row.")
@click.option("--merge", is_flag=True, help="Also write the merged model.")
@click.option("--workers", type=int, default=1, show_default=True)
@click.option("--submit", is_flag=True, help="Send it to the training service instead of running it here.")
@click.option("--target", "address", help="host:port of the training service (with --submit).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Where to save the loss curve PNG.")
@click.pass_obj
def finetune(
    obj: CliContext, path: str | None, submit: bool, address: str | None, plot: str | None, **opts: Any
) -> None:
    """Finetune a base model with LoRA, QLoRA, full finetuning or DPO.

    Either -f job.yaml (kind: TrainingJob, type: finetune), or --model and --data for a one-liner:

        shipyard finetune --model smollm2-135m-instruct --data alpaca.jsonl --method lora --steps 50
    """
    if path is not None:
        if opts["model"] or opts["data"]:
            raise InvalidArgument.field("file", "give either -f or --model/--data, not both")
        job = load_training_job_file(path)
        if job.spec.type is not JobType.FINETUNE:
            raise InvalidArgument.field(
                "spec.type", "this manifest is a pretraining job: use `shipyard train -f`"
            )
    else:
        job = one_liner_job(**opts)
    # cli.main registers this command on import: import its siblings only when the command runs.
    from shipyard.cli.train import run_job, submit_job

    if submit:
        submit_job(obj, job, address)
        return
    result = run_job(obj, job, plot)
    print_finetune_summary(result)


def one_liner_job(
    *,
    model: str | None,
    data: str | None,
    method: str,
    name: str | None = None,
    steps: int = 100,
    batch_size: int = 8,
    micro_batch_size: int = 4,
    learning_rate: float = 2e-4,
    max_seq_len: int = 512,
    lora_r: int = 8,
    lora_alpha: float = 16.0,
    target_modules: str | None = None,
    chat_template: str | None = None,
    data_format: str = "auto",
    packing: bool = False,
    merge: bool = False,
    workers: int = 1,
) -> TrainingJob:
    """The ``TrainingJob`` the one-liner options describe (validated like a manifest)."""
    missing = [f"--{k}" for k, v in (("model", model), ("data", data)) if not v]
    if missing:
        raise InvalidArgument.field("args", f"{' and '.join(missing)} required (or -f job.yaml)")
    assert model is not None
    finetune: dict[str, Any] = {
        "method": method,
        "dataFormat": "preference" if method == "dpo" and data_format == "auto" else data_format,
        "maxSeqLen": max_seq_len,
        "packing": packing,
        "mergeAdapter": merge,
    }
    if chat_template:
        finetune["chatTemplate"] = chat_template
    if method != "full":
        finetune["lora"] = {"r": lora_r, "alpha": lora_alpha}
        if target_modules:
            finetune["lora"]["targetModules"] = [m.strip() for m in target_modules.split(",") if m.strip()]
    return parse_training_job(
        {
            "apiVersion": "shipyard.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": name or _default_name(model, method)},
            "spec": {
                "type": "finetune",
                "model": model,
                "data": {"dataset": data},
                "finetune": finetune,
                "hyperparameters": {
                    "steps": steps,
                    "globalBatchSize": batch_size,
                    "microBatchSize": min(micro_batch_size, batch_size),
                    "learningRate": learning_rate,
                    "schedule": "cosine",
                    "weightDecay": 0.0,
                },
                "resources": {"workers": workers},
            },
        }
    )


def _default_name(model: str, method: str) -> str:
    stem = re.sub(r"[^a-z0-9-]+", "-", model.rsplit("/", 1)[-1].lower().removesuffix(".gguf")).strip("-")
    return f"{stem[:40] or 'model'}-{method}"


def print_finetune_summary(result: TrainingResult) -> None:
    m = result.final_metrics
    rows: list[tuple[str, Any]] = [("eval loss", f"{m['eval_loss']:.3f}" if "eval_loss" in m else "-")]
    if "reward_accuracy" in m:
        rows.append(
            ("reward accuracy / margin", f"{m['reward_accuracy']:.2f} / {m.get('reward_margin', 0.0):.3f}")
        )
    if result.merged_model_uri:
        rows += [
            ("merged model", result.merged_model_uri),
            ("merged registered as", result.merged_registered or "-"),
        ]
    display.out.print(display.summary_table(rows))
    if result.data_report:
        display.out.print(data_report_table(result.data_report))


def data_report_table(report: dict[str, Any]) -> Table:
    """Records read, kept, dropped and truncated, the reasons, and a few bad records."""
    from rich.table import Table

    table = Table(title=f"Data ({report.get('format', '?')})")
    for col in ("records", "kept", "bad", "truncated", "bad by reason"):
        table.add_column(col, justify="left" if col == "bad by reason" else "right")
    reasons = ", ".join(f"{k}={v:,}" for k, v in sorted((report.get("reasons") or {}).items()))
    table.add_row(
        f"{report.get('total', 0):,}",
        f"{report.get('kept', 0):,}",
        f"{report.get('bad', 0):,}",
        f"{report.get('truncated', 0):,}",
        reasons or "-",
    )
    for bad in (report.get("bad_examples") or [])[:3]:
        table.add_row("", "", "", "", f"[{bad.get('index')}] {bad.get('reason')}: {bad.get('detail', '')}")
    return table
