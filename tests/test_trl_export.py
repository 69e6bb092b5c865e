"""The TRL export trains the discovered loss with the installed TRL release, as one more
``DPOConfig.loss_type``.

A tiny GPT-2 with random weights and a word-level tokenizer built here: nothing is
downloaded. Each trainer runs 3 optimiser steps on CPU.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import warnings

import jax.numpy as jnp
import numpy as np
import datasets
import pytest
import tokenizers
import torch
import transformers
import trl

from grammar import export_trl, lowering, zoo

pytestmark = pytest.mark.slow
STEPS = 3
WORDS = "the a cat dog sat ran on under mat rug red blue big small quickly slowly".split()
# TRL's own metrics, which the discovered loss type keeps.
TRL_METRICS = ("entropy", "num_tokens", "logits/chosen", "logits/rejected", "mean_token_accuracy",
               "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
               "logps/rejected")


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


def load(tmp_path, name):
    z = zoo.ZOO[name]
    path = tmp_path / f"{name}.py"
    path.write_text(export_trl.export_trl(z.expr, z.constants, name, "test"))
    spec = importlib.util.spec_from_file_location(f"trl_export_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config(tmp_path, **settings):
    return trl.DPOConfig(output_dir=str(tmp_path / "out"), max_steps=STEPS, per_device_train_batch_size=4,
                         learning_rate=1e-2, logging_steps=1, use_cpu=True, report_to=[], save_strategy="no",
                         seed=0, **settings)


def build(trainer_class, setup, args, **kwargs):
    model, tok, data = setup
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trainer_class(model=copy.deepcopy(model), ref_model=copy.deepcopy(model), args=args,
                             train_dataset=data, processing_class=tok, **kwargs)


def train(trainer_class, setup, tmp_path, loss_constants=None, **settings):
    kwargs = {} if loss_constants is None else {"loss_constants": loss_constants}
    trainer = build(trainer_class, setup, config(tmp_path, **settings), **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
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
                      "inputs": {k: kwargs[k] for k in module.INPUTS},
                      "constants": {k: kwargs[k] for k in module.CONSTANTS}, "mean": float(out.mean())})
        return out

    module.loss = loss
    return calls


def assert_same_run(ours, theirs):
    """Two trainers' logged histories and final weights agree step for step."""
    (trainer, logs), (base_trainer, base_logs) = ours, theirs
    for entry, base in zip(logs, base_logs):
        assert entry["loss"] == pytest.approx(base["loss"], rel=1e-5, abs=1e-6)
        for key in TRL_METRICS:
            assert entry[key] == pytest.approx(base[key], rel=1e-4, abs=1e-5), key
    for p, q in zip(trainer.model.parameters(), base_trainer.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_discovered_loss_type_combines_with_trl_losses_as_dpo_trainer_would(setup, tmp_path):
    # The exported DPO loss is TRL's sigmoid loss, so loss_type=["discovered", "sft"] trains
    # what DPOTrainer trains with ["sigmoid", "sft"]: the same losses, TRL's own metrics and
    # weights at every step.
    module = load(tmp_path, "dpo")
    calls = recording(module)
    weights = dict(loss_weights=[2.0, 0.5])
    ours = train(module.DiscoveredLossDPOTrainer, setup, tmp_path, loss_type=["discovered", "sft"], **weights)
    assert len(calls) == STEPS  # the exported loss, not TRL's sigmoid, was used at every step
    assert ours[0].loss_types == ["discovered", "sft"]
    assert_same_run(ours, train(trl.DPOTrainer, setup, tmp_path / "base", loss_type=["sigmoid", "sft"], **weights))
    assert [entry["progress"] for entry in ours[1]] == pytest.approx([i / STEPS for i in range(STEPS)])


def test_discovered_loss_type_trains_the_loss_with_constructor_constants(setup, tmp_path):
    # A temporally-aware, length-normalised loss whose value is not DPO's, with its beta set
    # through the constructor.
    z = zoo.ZOO["sft_to_dpo"]
    module = load(tmp_path, "sft_to_dpo")
    calls = recording(module)
    model, tok, data = setup
    beta = 0.5
    trainer, logs = train(module.DiscoveredLossDPOTrainer, setup, tmp_path, loss_constants={"beta": beta},
                          loss_type=["discovered"])
    assert trainer.loss_types == ["discovered"] and trainer.beta == beta
    assert len(calls) == STEPS and all(c["constants"] == {"beta": beta} for c in calls)
    # Progress reaches the loss and moves from 0 toward 1: global_step / max_steps.
    assert [c["inputs"]["progress"] for c in calls] == pytest.approx([i / STEPS for i in range(STEPS)])
    # Lengths are the numbers of completion tokens (the response's words and the EOS token).
    first = calls[0]
    lengths = first["inputs"]["chosen_lengths"]
    n = len(first["args"][0])
    completions = {len(tok(row["chosen"])["input_ids"]) + 1 for row in data}
    assert lengths.shape == (n,) and set(lengths.tolist()) <= completions and len(set(lengths.tolist())) > 1
    # The logged first-step loss is the engine's value, at the constructor's beta, on the same
    # log-probabilities.
    terms = dict(zip(("logp_w", "logp_l", "ref_w", "ref_l"), (a.numpy() for a in first["args"])))
    terms.update(len_w=lengths.numpy(), t=np.full(n, first["inputs"]["progress"]))
    engine = lowering.lower(z.expr)({k: jnp.asarray(v, jnp.float32) for k, v in terms.items()},
                                    {"beta": jnp.float32(beta)})
    assert logs[0]["loss"] == pytest.approx(float(np.mean(engine)), rel=1e-5)
    assert logs[0]["loss"] == pytest.approx(first["mean"], rel=1e-6)
    # And it is not DPO's loss on those inputs, at either beta.
    r = (terms["logp_w"] - terms["ref_w"]) - (terms["logp_l"] - terms["ref_l"])
    for b in (beta, z.constants["beta"]):
        assert abs(logs[0]["loss"] - float(np.mean(np.logaddexp(0.0, -b * r)))) > 1e-2
    # The rewards are logged at the loss's beta; TRL's own metrics and progress are logged.
    assert logs[0]["rewards/chosen"] == pytest.approx(beta * float(np.mean(terms["logp_w"] - terms["ref_w"])),
                                                      rel=1e-4, abs=1e-6)
    assert logs[0]["rewards/margins"] == pytest.approx(beta * float(np.mean(r)), rel=1e-4, abs=1e-6)
    for entry in logs:
        assert set(TRL_METRICS) | {"progress"} <= set(entry)
    assert [entry["progress"] for entry in logs] == pytest.approx([i / STEPS for i in range(STEPS)])


@pytest.mark.parametrize("settings, loss_constants, refused", [
    (dict(loss_type=["ipo"]), None, [r"loss_type=\['ipo'\] does not name 'discovered'"]),
    (dict(loss_type=["sigmoid", "sft"]), None, ["does not name 'discovered'"]),
    (dict(ld_alpha=0.5, f_divergence_type="forward_kl", f_alpha_divergence_coef=0.3, use_weighting=True), None,
     ["ld_alpha=0.5", "f_divergence_type='forward_kl'", "f_alpha_divergence_coef=0.3", "use_weighting=True"]),
    (dict(label_smoothing=0.1, discopop_tau=0.1), None, ["label_smoothing=0.1", "discopop_tau=0.1"]),
    (dict(loss_type=["discovered", "robust"], discopop_tau=0.1), None, ["discopop_tau=0.1"]),
    (dict(beta=0.5), None, [r"beta=0.5 is not the discovered loss's beta=0.1 .*loss_constants=\{'beta': 0.5\}"]),
    (dict(beta=0.5), {"beta": 0.3}, [r"beta=0.5 is not the discovered loss's beta=0.3"]),
    ({}, {"lam": 0.2}, [r"unknown loss_constants lam; the discovered loss's constants are: beta\."]),
])
def test_refuses_settings_it_would_not_honour_in_one_line(setup, tmp_path, settings, loss_constants, refused):
    module = load(tmp_path, "dpo")
    args = config(tmp_path, **settings)
    with pytest.raises(ValueError) as error:
        build(module.DiscoveredLossDPOTrainer, setup, args, loss_constants=loss_constants)
    message = str(error.value)
    assert "\n" not in message
    for pattern in refused:
        assert re.search(pattern, message), (pattern, message)


def test_honours_settings_that_a_selected_loss_reads(setup, tmp_path):
    module = load(tmp_path, "dpo")
    args = config(tmp_path, loss_type=["discovered", "robust"], label_smoothing=0.1, beta=0.5)
    trainer = build(module.DiscoveredLossDPOTrainer, setup, args, loss_constants={"beta": 0.5})
    assert trainer.beta == 0.5 and trainer.loss_constants == {"beta": 0.5}
    assert trainer.loss_types == ["discovered", "robust"] and trainer.loss_weights == [1.0, 1.0]
    # DPOConfig's default loss_type means the discovered loss (the caller's config is left
    # as it was); a loss with no beta leaves DPOConfig.beta to TRL's losses and the rewards.
    module = load(tmp_path, "sft")
    args = config(tmp_path, beta=0.5)
    trainer = build(module.DiscoveredLossDPOTrainer, setup, args)
    assert trainer.loss_types == ["discovered"] and trainer.args.loss_type == ["discovered"]
    assert args.loss_type == ["sigmoid"] and trainer.beta == 0.5


def test_refuses_unverified_trl(setup, tmp_path, monkeypatch):
    module = load(tmp_path, "ipo")
    monkeypatch.setattr(module.trl, "__version__", "0.29.1")
    with pytest.raises(RuntimeError, match=r"verified against trl >= 1\.16, < 1\.17.*trl 0\.29\.1"):
        build(module.DiscoveredLossDPOTrainer, setup, config(tmp_path))


def test_installed_trl_is_the_verified_release():
    low, high = export_trl.TRL_VERIFIED
    assert low <= tuple(int(p) for p in trl.__version__.split(".")[:2]) < high
