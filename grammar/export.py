"""Export of a loss as a standalone Python module (JAX or PyTorch), or a TRL trainer.

The module imports only ``jax.numpy`` or ``torch`` and defines::

    loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
         reference_rejected_logps, *, chosen_lengths=None, rejected_lengths=None,
         progress=0.0, <constants with their defaults>) -> per-example losses

It computes the expression tree that was scored, primitive by primitive in the same
stable forms (not the simplified closed form, which is algebraically equal but may be
numerically worse); subexpressions used more than once become named locals. The closed
form (text and LaTeX), the constants and the provenance are in the docstring.
"""

from __future__ import annotations

import datetime
import textwrap
from typing import Mapping, Sequence

from grammar import symbolic
from grammar.expr import Expr, to_text
from grammar.primitives import PRIMITIVES, SOURCE_HELPERS

FORMATS = ("jax", "torch")

ARGUMENTS = {
    "logp_w": "policy_chosen_logps",
    "logp_l": "policy_rejected_logps",
    "ref_w": "reference_chosen_logps",
    "ref_l": "reference_rejected_logps",
    "len_w": "chosen_lengths",
    "len_l": "rejected_lengths",
    "t": "progress",
}


def _num(v: float) -> str:
    return repr(float(v))


def _body(expr: Expr, fmt: str) -> tuple[list[str], str, set[str]]:
    """Statements, the result expression and the helpers used."""
    nodes = expr.unique_nodes()
    uses: dict[Expr, int] = {n: 0 for n in nodes}
    for n in nodes:
        for a in n.args:
            uses[a] += 1
    names: dict[Expr, str] = {}
    lines: list[str] = []
    helpers: set[str] = set()

    def render(n: Expr, as_function_arg: bool = False) -> str:
        if n in names:
            return names[n]
        if n.op in ("var", "const"):
            return n.name
        if n.op == "num":
            if fmt == "torch" and as_function_arg:
                return f"_scalar({_num(n.value)}, logp_w)"
            return _num(n.value)
        prim = PRIMITIVES[n.op]
        if prim.helper:
            helpers.add(prim.helper)
        args = [render(a, as_function_arg=not prim.infix) for a in n.args]
        return prim.expr[fmt].format(*args)

    for n in nodes:
        if n.op not in ("var", "const", "num") and uses[n] > 1 and n is not expr:
            name = f"v{len(names)}"
            lines.append(f"{name} = {render(n)}")
            names[n] = name
    return lines, render(expr), helpers


def _docstring(expr: Expr, constants: Mapping[str, float], title: str, provenance: str,
               parts: Sequence[str] | None = None) -> str:
    form = symbolic.text(expr)
    latex = symbolic.latex(expr)
    const_lines = "\n".join(f"    {k} = {v!r}" for k, v in constants.items()) or "    (none)"
    part_lines = ("Parts (in the grammar's terms):\n\n" + "\n".join(f"    {line}" for line in parts) + "\n\n"
                  if parts else "")
    return (
        f"{title}\n\n"
        f"Closed form (r_y = logp_y - ref_y, m_y = logp_y / len_y, t = progress):\n\n"
        f"    loss = {form}\n\n"
        f"{part_lines}"
        f"LaTeX: {latex}\n\n"
        f"Expression as scored: {to_text(expr)}\n\n"
        f"Constants (keyword arguments, defaults as discovered):\n{const_lines}\n\n"
        f"Provenance: {provenance}\n"
    )


def export_module(expr: Expr, constants: Mapping[str, float], fmt: str = "jax",
                  title: str = "A preference-optimisation loss.", provenance: str = "",
                  parts: Sequence[str] | None = None) -> str:
    """Source of a standalone module computing ``expr`` (see the module docstring). Long
    because it is a template: the module's sections in the order they are written."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    missing = [c for c in expr.constants if c not in constants]
    if missing:
        raise ValueError(f"no value for constant(s) {missing}")
    constants = {k: float(constants[k]) for k in expr.constants}
    lines, result, helpers = _body(expr, fmt)
    used = set(expr.terminals)
    doc = _docstring(expr, constants, title, provenance or "exported by mpo-discover", parts)
    kw = "".join(f", {k}={v!r}" for k, v in constants.items())
    sig = (
        "def loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,\n"
        "         reference_rejected_logps, *, chosen_lengths=None, rejected_lengths=None,\n"
        f"         progress=0.0{kw}):"
    )
    if fmt == "jax":
        header = "import jax.numpy as jnp\n"
        prep = ["logp_w = jnp.asarray(policy_chosen_logps, jnp.float32)"]
        conv = "jnp.asarray({src}, jnp.float32)"
        ones = "jnp.ones_like(logp_w)"
        finish = "return jnp.broadcast_to({r}, logp_w.shape)"
        const_prep = [f"{k} = jnp.asarray({k}, jnp.float32)" for k in constants]
    else:
        header = "import torch\n"
        prep = ["logp_w = torch.as_tensor(policy_chosen_logps)",
                "if not torch.is_floating_point(logp_w):",
                "    logp_w = logp_w.float()"]
        conv = "torch.as_tensor({src}, dtype=logp_w.dtype, device=logp_w.device)"
        ones = "torch.ones_like(logp_w)"
        finish = "return torch.broadcast_to({r}, logp_w.shape)"
        const_prep = [f"{k} = _scalar({k}, logp_w)" for k in constants]
        helpers.add("_scalar")
    for term in ("logp_l", "ref_w", "ref_l"):
        if term in used:
            prep.append(f"{term} = {conv.format(src=ARGUMENTS[term])}")
    for term in ("len_w", "len_l"):
        if term in used:
            src = ARGUMENTS[term]
            prep.append(f"{term} = {ones} if {src} is None else {conv.format(src=src)}")
    if "t" in used:
        prep.append(f"t = {conv.format(src='progress')}")
    body = prep + const_prep + lines + [finish.format(r=result)]
    helper_src = []
    for h in sorted(helpers):
        if h == "_scalar":
            helper_src.append(
                "def _scalar(value, like):\n"
                "    return torch.as_tensor(value, dtype=like.dtype, device=like.device)\n")
        else:
            helper_src.append(SOURCE_HELPERS[fmt][h])
    stamp = datetime.date.today().isoformat()
    out = [
        f'r"""{doc}"""\n',
        f"# Generated by mpo-discover on {stamp}. Standalone: needs only "
        f"{'jax' if fmt == 'jax' else 'torch'}.\n",
        header,
        f"CONSTANTS = {constants!r}\n",
        f"EXPRESSION = {to_text(expr)!r}\n\n",
        *(h + "\n" for h in helper_src),
        sig + "\n"
        + textwrap.indent('"""Per-example losses; logps are summed log-likelihoods of each response."""\n'
                          + "\n".join(body) + "\n", "    "),
    ]
    return "\n".join(part.rstrip("\n") + "\n" for part in out)


# The TRL releases whose ``DPOTrainer`` internals the exported trainer was tested against
# (``_compute_loss``, ``compute_ref_log_probs``, the fused LM head's ``log_probs``):
# [low, high) as (major, minor). Widen only after running tests/test_trl_export.py on the
# new release.
TRL_VERIFIED = ((1, 16), (1, 17))

TRL_TEMPLATE = """r\"\"\"A TRL ``DPOTrainer`` that trains a loss discovered by mpo-discover.

Usage (trl >= {lo}, < {hi}; the model, tokenizer and data are yours)::

    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig
    from my_loss import DiscoveredLossDPOTrainer   # this file, saved as my_loss.py

    model = AutoModelForCausalLM.from_pretrained("your/model")
    tokenizer = AutoTokenizer.from_pretrained("your/model")
    data = Dataset.from_list([{{"prompt": p, "chosen": c, "rejected": r}} for p, c, r in pairs])
    args = DPOConfig(output_dir="out", max_steps=1000)   # leave loss_type at its default
    trainer = DiscoveredLossDPOTrainer(model=model, args=args, train_dataset=data,
                                       processing_class=tokenizer)
    trainer.train()

The per-example loss is ``loss`` below, applied to TRL's own sequence log-probabilities
(summed over completion tokens), the reference's (from ``ref_model``, the PEFT base, or
``precompute_ref_log_probs``), the numbers of completion tokens, and ``progress`` =
global_step / max_steps (0 at the first step, approaching 1 at the last). The batch loss
is their mean. ``DPOConfig.loss_type``, ``loss_weights``, ``ld_alpha``,
``f_divergence_type`` and ``use_weighting`` select TRL's own losses and are refused here;
the discovered constants are ``DiscoveredLossDPOTrainer.loss_constants``. The logged
``rewards/*`` are TRL's implicit rewards ``DPOConfig.beta * (logp - ref_logp)``, as for any
DPO run, and ``logps/*`` the summed log-probabilities; ``progress`` is logged too.

{doc}\"\"\"

# Generated by mpo-discover on {stamp}. Needs torch and trl >= {lo}, < {hi}.
import torch
import trl
from trl import DPOTrainer

TRL_VERIFIED = {verified!r}

{module}

def _check_trl_version(version):
    try:
        found = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        found = None
    low, high = TRL_VERIFIED
    if found is None or not (low <= found < high):
        raise RuntimeError(
            f"DiscoveredLossDPOTrainer was verified against trl >= {{low[0]}}.{{low[1]}}, "
            f"< {{high[0]}}.{{high[1]}} (it relies on DPOTrainer internals), but trl {{version}} is "
            f"installed: pip install 'trl>={{low[0]}}.{{low[1]}},<{{high[0]}}.{{high[1]}}', or export "
            f"again with an mpo-discover release verified against trl {{version}}.")


def _check_args(args):
    if args is None:
        return
    refused = []
    if list(getattr(args, "loss_type", ["sigmoid"])) != ["sigmoid"]:
        refused.append(f"loss_type={{args.loss_type!r}}")
    if getattr(args, "loss_weights", None) is not None:
        refused.append(f"loss_weights={{args.loss_weights!r}}")
    if getattr(args, "ld_alpha", None) is not None:
        refused.append(f"ld_alpha={{args.ld_alpha!r}}")
    if getattr(args, "f_divergence_type", "reverse_kl") != "reverse_kl":
        refused.append(f"f_divergence_type={{args.f_divergence_type!r}}")
    if getattr(args, "use_weighting", False):
        refused.append("use_weighting=True")
    if refused:
        raise ValueError(
            "DiscoveredLossDPOTrainer trains the discovered loss; these DPOConfig settings select or "
            f"change TRL's own losses and would be ignored: {{', '.join(refused)}}. Leave them at "
            "their defaults.")


class DiscoveredLossDPOTrainer(DPOTrainer):
    \"\"\"DPOTrainer whose per-example loss is the discovered ``loss`` above.

    Refuses, when constructed, a trl release it was not verified against and DPOConfig
    settings that it would ignore.
    \"\"\"

    loss_constants = dict(CONSTANTS)

    def __init__(self, *args, **kwargs):
        _check_trl_version(trl.__version__)
        _check_args(kwargs.get("args", args[2] if len(args) > 2 else None))
        super().__init__(*args, **kwargs)
        _check_args(self.args)

    def training_progress(self):
        \"\"\"Fraction of training done: global_step / max_steps, in [0, 1).\"\"\"
        max_steps = int(getattr(self.state, "max_steps", 0) or 0)
        return float(self.state.global_step) / max_steps if max_steps > 0 else 0.0

    def _compute_loss(self, model, inputs, return_outputs):
        mode = "train" if self.model.training else "eval"
        completion_mask = inputs["completion_mask"]
        shift_mask = completion_mask[..., 1:]
        model_kwargs = {{k: v for k, v in inputs.items()
                        if k not in ("completion_mask", "ref_chosen_logps", "ref_rejected_logps")}}
        model_kwargs["use_cache"] = False
        if self.aux_loss_enabled:
            model_kwargs["output_router_logits"] = True
        labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
        outputs = model(**model_kwargs, labels=labels, fused_lm_head=True)
        # TRL's sequence log-probabilities: summed over completion tokens (others are 0).
        logps = outputs.log_probs[:, -shift_mask.size(1):].sum(dim=1)
        chosen_logps, rejected_logps = logps.chunk(2, dim=0)  # the batch is [chosen, rejected]
        if self.precompute_ref_logps:
            ref_chosen_logps, ref_rejected_logps = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            reference = self.ref_model if self.ref_model is not None else self.model
            ref_chosen_logps, ref_rejected_logps = self.compute_ref_log_probs(reference, inputs)
        chosen_lengths, rejected_lengths = shift_mask.sum(dim=1).to(chosen_logps.dtype).chunk(2, dim=0)
        progress = self.training_progress()
        losses = loss(chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps,
                      chosen_lengths=chosen_lengths, rejected_lengths=rejected_lengths,
                      progress=progress, **self.loss_constants)
        total = losses.mean()
        if self.aux_loss_enabled:
            total = total + self.router_aux_loss_coef * outputs.aux_loss
        self._log_pair_metrics(mode, chosen_logps.detach(), rejected_logps.detach(),
                               ref_chosen_logps, ref_rejected_logps, progress)
        if return_outputs:
            with torch.no_grad():
                outputs = model(**model_kwargs)
            return total, outputs
        return total

    def _log_pair_metrics(self, mode, chosen_logps, rejected_logps, ref_chosen_logps,
                          ref_rejected_logps, progress):
        gather = self.accelerator.gather_for_metrics
        chosen_rewards = self.beta * (chosen_logps - ref_chosen_logps)
        rejected_rewards = self.beta * (rejected_logps - ref_rejected_logps)
        metrics = self._metrics[mode]
        metrics["rewards/chosen"].append(gather(chosen_rewards).mean().item())
        metrics["rewards/rejected"].append(gather(rejected_rewards).mean().item())
        metrics["rewards/accuracies"].append(gather((chosen_rewards > rejected_rewards).float()).mean().item())
        metrics["rewards/margins"].append(gather(chosen_rewards - rejected_rewards).mean().item())
        metrics["logps/chosen"].append(gather(chosen_logps).mean().item())
        metrics["logps/rejected"].append(gather(rejected_logps).mean().item())
        metrics["progress"].append(progress)
"""


def export_trl(expr: Expr, constants: Mapping[str, float], title: str, provenance: str,
               parts: Sequence[str] | None = None) -> str:
    """A TRL ``DPOTrainer`` subclass (for the trl releases in ``TRL_VERIFIED``) that trains
    the torch export of ``expr`` on TRL's summed log-probabilities."""
    module = export_module(expr, constants, "torch", title, provenance, parts)
    # Drop the torch module's own docstring and import; keep its definitions.
    body = module.split('"""', 2)[2]
    body = "\n".join(line for line in body.splitlines()
                     if line.strip() != "import torch" and not line.startswith("# Generated by"))
    doc = _docstring(expr, {k: float(constants[k]) for k in expr.constants}, title, provenance, parts)
    (lo_major, lo_minor), (hi_major, hi_minor) = TRL_VERIFIED
    return TRL_TEMPLATE.format(doc=doc, stamp=datetime.date.today().isoformat(), module=body.strip() + "\n",
                               lo=f"{lo_major}.{lo_minor}", hi=f"{hi_major}.{hi_minor}",
                               verified=TRL_VERIFIED)
