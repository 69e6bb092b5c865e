"""The TRL export trains the discovered loss with the installed TRL release.

A tiny GPT-2 with random weights and a word-level tokenizer built here: nothing is
downloaded. Each trainer runs 3 optimiser steps on CPU.
"""

from __future__ import annotations

import copy
import importlib.util
import warnings

import jax.numpy as jnp
import numpy as np
import datasets
import pytest
import tokenizers
import torch
import transformers
import trl

from grammar import export, export_trl, lowering, zoo

pytestmark = pytest.mark.slow
STEPS = 3
WORDS = "the a cat dog sat ran on under mat rug red blue big small quickly slowly".split()


def tokenizer():
    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", "<unk>"] + WORDS)}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>",
                                                unk_token="<unk>")


def dataset():
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(8):
        words = lambda k: " ".join(rng.choice(WORDS, size=k))  # noqa: E731
        # Responses of different lengths, so lengths matter to length-normalised losses.
        rows.append({"prompt": words(3), "chosen": words(int(rng.integers(1, 6))),
                     "rejected": words(int(rng.integers(1, 6)))})
    return datasets.Dataset.from_list(rows)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    tok = tokenizer()
    config = transformers.GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=64,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                                     pad_token_id=tok.pad_token_id)
    model = transformers.GPT2LMHeadModel(config)
    return model, tok, dataset()


def load(tmp_path, name, expr, constants):
    path = tmp_path / f"{name}.py"
    path.write_text(export_trl.export_trl(expr, constants, name, "test"))
    spec = importlib.util.spec_from_file_location(f"trl_export_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train(trainer_class, setup, tmp_path, **config):
    model, tok, data = setup
    args = trl.DPOConfig(output_dir=str(tmp_path / "out"), max_steps=STEPS, per_device_train_batch_size=4,
                         learning_rate=1e-2, logging_steps=1, use_cpu=True, report_to=[], save_strategy="no",
                         seed=0, **config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = trainer_class(model=copy.deepcopy(model), ref_model=copy.deepcopy(model), args=args,
                                train_dataset=data, processing_class=tok)
        trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == STEPS
    return trainer, logs


def recording(module):
    """Wraps the exported ``loss`` so each call's inputs and mean are kept."""
    calls = []
    original = module.loss

    def loss(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append({"args": [a.detach().clone() for a in args],
                      "lengths": (kwargs["chosen_lengths"].clone(), kwargs["rejected_lengths"].clone()),
                      "progress": kwargs["progress"], "constants": {k: kwargs[k] for k in module.CONSTANTS},
                      "mean": float(out.mean())})
        return out

    module.loss = loss
    return calls


@pytest.fixture(scope="module")
def dpo_baseline(setup, tmp_path_factory):
    return train(trl.DPOTrainer, setup, tmp_path_factory.mktemp("dpo"))


def test_exported_dpo_reproduces_dpo_trainer_step_for_step(setup, dpo_baseline, tmp_path):
    z = zoo.ZOO["dpo"]
    module = load(tmp_path, "dpo", z.expr, z.constants)
    calls = recording(module)
    base_trainer, base_logs = dpo_baseline
    trainer, logs = train(module.DiscoveredLossDPOTrainer, setup, tmp_path, beta=z.constants["beta"])
    assert len(calls) == STEPS  # the exported loss, not TRL's, was used at every step
    for ours, theirs in zip(logs, base_logs):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5, abs=1e-6)
        for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-5), key
    for p, q in zip(trainer.model.parameters(), base_trainer.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_discovered_loss_is_called_with_lengths_and_progress(setup, dpo_baseline, tmp_path):
    # A temporally-aware, length-normalised loss whose value is not DPO's.
    z = zoo.ZOO["sft_to_dpo"]
    module = load(tmp_path, "sft_to_dpo", z.expr, z.constants)
    calls = recording(module)
    model, tok, data = setup
    _, logs = train(module.DiscoveredLossDPOTrainer, setup, tmp_path)
    assert len(calls) == STEPS
    # Progress reaches the loss and moves from 0 toward 1: global_step / max_steps.
    assert [c["progress"] for c in calls] == pytest.approx([i / STEPS for i in range(STEPS)])
    # Lengths are the numbers of completion tokens (the response's words and the EOS token).
    first = calls[0]
    n = len(first["args"][0])
    completions = {len(tok(row["chosen"])["input_ids"]) + 1 for row in data} | {
        len(tok(row["rejected"])["input_ids"]) + 1 for row in data}
    for lengths in first["lengths"]:
        assert lengths.shape == (n,) and set(lengths.tolist()) <= completions
    assert len(set(first["lengths"][0].tolist()) | set(first["lengths"][1].tolist())) > 1
    # The logged first-step loss is the engine's value on the same log-probabilities.
    terms = dict(zip(("logp_w", "logp_l", "ref_w", "ref_l"), (a.numpy() for a in first["args"])))
    terms.update(len_w=first["lengths"][0].numpy(), len_l=first["lengths"][1].numpy(),
                 t=np.full(n, first["progress"]))
    engine = lowering.lower(z.expr)({k: jnp.asarray(v, jnp.float32) for k, v in terms.items()},
                                    {k: jnp.float32(v) for k, v in first["constants"].items()})
    assert logs[0]["loss"] == pytest.approx(float(np.mean(engine)), rel=1e-5)
    assert logs[0]["loss"] == pytest.approx(first["mean"], rel=1e-6)
    # And it is not DPO's loss on those inputs.
    r = (terms["logp_w"] - terms["ref_w"]) - (terms["logp_l"] - terms["ref_l"])
    dpo = float(np.mean(np.logaddexp(0.0, -z.constants["beta"] * r)))
    assert abs(logs[0]["loss"] - dpo) > 1e-2
    assert [entry["progress"] for entry in logs] == pytest.approx([i / STEPS for i in range(STEPS)])


def test_refuses_unverified_trl_and_ignored_settings(setup, tmp_path, monkeypatch):
    z = zoo.ZOO["ipo"]
    module = load(tmp_path, "ipo", z.expr, z.constants)
    model, tok, data = setup
    args = trl.DPOConfig(output_dir=str(tmp_path / "out"), max_steps=1, use_cpu=True, report_to=[],
                         loss_type=["ipo"])
    with pytest.raises(ValueError, match=r"loss_type=\['ipo'\]"):
        module.DiscoveredLossDPOTrainer(model=model, ref_model=copy.deepcopy(model), args=args,
                                        train_dataset=data, processing_class=tok)
    monkeypatch.setattr(module.trl, "__version__", "0.29.1")
    with pytest.raises(RuntimeError, match=r"verified against trl >= 1\.16, < 1\.17.*trl 0\.29\.1"):
        module.DiscoveredLossDPOTrainer(model=model, args=trl.DPOConfig(output_dir=str(tmp_path), use_cpu=True),
                                        train_dataset=data, processing_class=tok)


def test_installed_trl_is_the_verified_release():
    low, high = export_trl.TRL_VERIFIED
    assert low <= tuple(int(p) for p in trl.__version__.split(".")[:2]) < high
