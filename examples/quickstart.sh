#!/usr/bin/env bash
# The embedded main job: the whole chain on one machine, no cluster (`make quickstart` runs this).
#
#   1. ingest     clean, deduplicate and tokenize the shared corpus into a Dataset
#   2. pretrain   a ~5M-parameter Llama on it (local Ray, 2 workers), loss curve PNG
#   3. serve      that model as a local ModelDeployment and complete a few prompts through its API
#   4. evaluate   SmolLM2-135M-Instruct (a real pretrained model, bundled offline) and ask it a question
#   5. finetune   LoRA on Alpaca instructions (local Ray), merged model written and registered
#   6. compare    the same question and the same evaluation after finetuning, side by side
#   7. agent      SmolLM2 as a local ModelDeployment, an Agent with a calculator, Python and search over
#                 the corpus from step 1: a question that needs a tool, then research mode with sources
#
# Ray binds every interface, so `make quickstart` runs this inside a loopback-only network namespace
# when the kernel allows one. Everything lands under .shipyard/quickstart/.
set -euo pipefail
SHIPYARD=${SHIPYARD:-shipyard}
Q=.shipyard/quickstart
export SHIPYARD_EVAL_DATA_ROOT=${SHIPYARD_EVAL_DATA_ROOT:-../shared/data/eval}
TASKS=hellaswag,truthfulqa_mc1
LIMIT=${QUICKSTART_EVAL_LIMIT:-20}
QUESTION="Give three tips for staying healthy."

stage() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }

stage "1/7 ingest: clean, deduplicate and tokenize the corpus"
$SHIPYARD ingest run -f examples/ingest-corpus.yaml

stage "2/7 pretrain a tiny Llama on it (local Ray, 2 workers)"
$SHIPYARD train -f examples/pretrain-tiny.yaml --plot "$Q/loss-curve.png"

stage "3/7 serve the pretrained model (a local ModelDeployment) and complete prompts through its API"
$SHIPYARD apply -f examples/serve-tiny.yaml
trap '$SHIPYARD delete modeldeployment llama-tiny-pretrain >/dev/null 2>&1 || true' EXIT
$SHIPYARD get modeldeployments
$SHIPYARD chat llama-tiny-pretrain --raw --temperature 0 --max-tokens 24 \
  -p "It is a truth universally acknowledged" -p "ROMEO:" -p "The sea"
$SHIPYARD delete modeldeployment llama-tiny-pretrain

stage "4/7 SmolLM2-135M-Instruct before finetuning: evaluation and an answer"
$SHIPYARD eval --model smollm2-135m-instruct --tasks "$TASKS" --limit "$LIMIT" --output "$Q/eval/before"
$SHIPYARD chat smollm2-135m-instruct --temperature 0 --max-tokens 96 -p "$QUESTION"

stage "5/7 LoRA-finetune it on Alpaca instructions (local Ray)"
$SHIPYARD finetune -f examples/finetune-smollm2-lora.yaml --plot "$Q/finetune-loss.png"

stage "6/7 after finetuning: the same question, and the evaluation compared with before"
FINETUNED="$Q/models/smollm2-alpaca-lora-merged"
$SHIPYARD chat "$FINETUNED" --temperature 0 --max-tokens 96 -p "$QUESTION"
$SHIPYARD eval --model "$FINETUNED" --tasks "$TASKS" --limit "$LIMIT" --output "$Q/eval/after" \
  --compare "$Q/eval/before/report.json" --chart "$Q/eval/before-after.png"

stage "7/7 an agent: SmolLM2 served locally, a calculator, Python and search over the ingested corpus"
$SHIPYARD apply -f examples/serve-smollm2.yaml
trap '$SHIPYARD delete agent corpus-helper >/dev/null 2>&1 || true
      $SHIPYARD delete modeldeployment smollm2 >/dev/null 2>&1 || true' EXIT
$SHIPYARD apply -f examples/agent-corpus.yaml
$SHIPYARD get agents
$SHIPYARD agent ask --agent corpus-helper "What is 1234 * 56?"
$SHIPYARD agent ask --agent corpus-helper --research "Who is Elizabeth Bennet's father?"
$SHIPYARD delete agent corpus-helper
$SHIPYARD delete modeldeployment smollm2
