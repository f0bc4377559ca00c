"""Benchmark: a LoRA reward-model training step through the project's code against a bare peft
loop on the same batches.

The project's side is `lora_fine_tuning.fit` whole (tokenising, batching, checkpointing at the
default interval, the progress bar); the bare side is a plain loop over the same padded batches,
prepared beforehand: peft LoRA on q_proj/v_proj, a linear head on the last token, the
Bradley-Terry loss, backward, clipping, AdamW (with --gradient-checkpointing, also once with
activations recomputed in the backward pass). Each runs `--steps` steps; the first `--warmup` are
left out of the rates. Prints tokens/s (tokens of the texts, padding excluded), seconds per step,
the ratio project / bare, and the model FLOP/s counted as 4 x parameters x tokens (the forward
pass, and the backward pass through the activations only: the frozen weights get no gradient).

    python bench/training.py --model-dir models/smollm2-135m --steps 8 --batch-size 4
    python bench/training.py --shape llama-7b --dtype bfloat16 --steps 20 --batch-size 16
"""

import argparse
import time

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from genies.data.pairs import training_pairs
from genies.data.splits import build_split, read_split
from genies.interventions import get
from genies.interventions.base import PairData
from genies.interventions.reward_model import TextBatches, step_pairs
from genies.models.loading import load_model

# Dense bf16 peak FLOP/s by device name fragment (vendor data sheets, without sparsity).
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}
SHAPES = {  # (hidden, intermediate, layers, attention heads, KV heads, vocab)
    "llama-7b": (4096, 11008, 32, 32, 32, 32000),
    "llama-13b": (5120, 13824, 40, 40, 40, 32000),
}


class Timer:
    """Wall time of each step, synchronised with the device."""

    def __init__(self, device: str):
        self.device, self.stamps = device, [time.perf_counter()]

    def tick(self, *args, **kwargs) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)
        self.stamps.append(time.perf_counter())


def shaped_model(loaded, shape: str, dtype, device):
    """A random LLaMA of `shape` (same FLOPs as the real one) with the embedded tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, intermediate, layers, heads, kv_heads, vocab = SHAPES[shape]
    config = LlamaConfig(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        vocab_size=max(vocab, len(loaded.tokenizer)),
        max_position_embeddings=4096,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    loaded.model = model.eval()
    return loaded


def bare_loop(loaded, batches, hp, device, timer, checkpointing=False) -> None:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(
        r=hp["r"],
        lora_alpha=hp["alpha"],
        lora_dropout=hp["dropout"],
        target_modules=hp["target_modules"],
        bias="none",
    )
    if checkpointing:  # peft's frozen inputs must require grads for the recomputation
        loaded.model.model.gradient_checkpointing_enable()
        loaded.model.enable_input_require_grads()
    decoder = get_peft_model(loaded.model.model, config)
    head = torch.nn.Linear(loaded.model.config.hidden_size, 1, bias=False).to(device)
    parameters = [p for p in decoder.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=hp["learning_rate"], weight_decay=0.0)
    decoder.train()
    for ids, mask, positions in batches:
        hidden = decoder(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False
        ).last_hidden_state[:, -1]
        rewards = head(hidden.float())[:, 0]
        half = len(rewards) // 2
        loss = -torch.nn.functional.logsigmoid(rewards[:half] - rewards[half:]).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, hp["max_grad_norm"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        timer.tick()


def rates(timer: Timer, tokens: list[int], warmup: int) -> tuple[float, float]:
    """(tokens/s, seconds per step) over the steps after the warm-up."""
    seconds = np.diff(timer.stamps)[warmup:]
    return sum(tokens[warmup:]) / seconds.sum(), float(seconds.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="models/smollm2-135m")
    parser.add_argument("--shape", choices=sorted(SHAPES), help="a random model of this shape")
    parser.add_argument("--dtype", default=None, help="default: the model's (auto)")
    parser.add_argument("--device", default="cuda:0" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--distribution", default="alpaca_mmlu")
    parser.add_argument("--raw-dir", default="data/raw")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4, help="pairs per step")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--gradient-checkpointing", action="store_true", help="also the bare loop with it"
    )
    parser.add_argument("--work", default="/tmp/genies-bench-training")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split_path = f"{args.work}/{args.distribution}/train.parquet"
    build_split(args.raw_dir, args.distribution, "train", split_path)
    split = read_split(split_path).head(args.steps * args.batch_size)
    pairs = training_pairs(split, seed=0)
    method = get("lora_fine_tuning")
    hp = {key: spec["default"] for key, spec in method.hyperparameters.items()}
    hp |= {"steps": args.steps, "batch_size": args.batch_size}

    def fresh():
        loaded = load_model(args.model_dir, args.device, args.dtype)
        if args.shape:
            dtype = getattr(torch, args.dtype or "bfloat16")
            loaded = shaped_model(loaded, args.shape, dtype, args.device)
        return loaded

    # the batches of every step, as the project builds them, ready on the device for the bare loop
    loaded = fresh()
    texts = TextBatches(loaded, args.max_length, 0)
    chosen = texts.rows(list(pairs.prompt), list(pairs.chosen))
    rejected = texts.rows(list(pairs.prompt), list(pairs.rejected))
    steps = [step_pairs(0, s, args.batch_size, len(pairs)) for s in range(args.steps)]
    rows = [[chosen[i] for i in step] + [rejected[i] for i in step] for step in steps]
    tokens = [sum(len(row) for row in batch) for batch in rows]
    batches = [texts.batch(batch, args.device) for batch in rows]
    # the embedding is a lookup, no multiply-adds
    decoder = loaded.model.model
    params = sum(p.numel() for p in decoder.parameters()) - decoder.embed_tokens.weight.numel()

    bare = Timer(args.device)
    bare_loop(loaded, batches, hp, args.device, bare)

    project = Timer(args.device)
    loaded = fresh()
    data = PairData(
        pairs,
        model=loaded,
        device=args.device,
        settings={"batch_size": 16, "max_length": args.max_length},
    )
    handle = register_optimizer_step_post_hook(project.tick)
    try:
        project.stamps = [time.perf_counter()]
        method.fit(data, hp, seed=0)
    finally:
        handle.remove()

    name = args.shape or loaded.manifest["name"]
    print(
        f"{name} ({params / 1e6:.0f}M parameters besides the embedding), {loaded.model.dtype}, "
        f"{args.device}, {args.threads} thread(s); {args.steps} steps of {args.batch_size} pairs "
        f"({np.mean(tokens):.0f} tokens/step), first {args.warmup} left out"
    )
    results = {"bare peft loop": rates(bare, tokens, args.warmup)}
    results["project (lora_fine_tuning.fit)"] = rates(project, tokens, args.warmup)
    if args.gradient_checkpointing:
        recomputed = Timer(args.device)
        bare_loop(fresh(), batches, hp, args.device, recomputed, checkpointing=True)
        results["bare loop, gradient checkpointing"] = rates(recomputed, tokens, args.warmup)
    peak = None
    if args.device.startswith("cuda"):
        gpu = torch.cuda.get_device_name(args.device)
        peak = next((value for key, value in PEAK_BF16.items() if key in gpu), None)
    for label, (speed, step) in results.items():
        flops = 4 * params * speed
        line = f"{label}: {speed:,.0f} tokens/s, {step:.2f} s/step, {flops / 1e9:,.1f} GFLOP/s"
        if peak:
            line += f", MFU {flops / peak:.1%}"
        print(line)
    ratio = results["project (lora_fine_tuning.fit)"][0] / results["bare peft loop"][0]
    print(f"project / bare: {ratio:.2f}x")


if __name__ == "__main__":
    main()
