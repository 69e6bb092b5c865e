"""The zoo: hand-designed preference losses, each an expression of the language.

Notation (the MPO template of mirror.yaml): r_y = logp_y - ref_y, D = r_w - r_l, m_y = logp_y / len_y
(mean log-likelihood), n_y = ref_y / len_y, ls = log-sigmoid, s = sigmoid. Every entry reproduces the
reference formula of its paper (and TRL's ``DPOTrainer`` / ``CPOTrainer`` /
``ORPOTrainer`` loss of the same name, where TRL has one; the one exception is ``ipo``,
IPO on summed log-ratios, while TRL's ``loss_type="ipo"`` is ``ipo_norm``); each is written
in a numerically stable form (DiscoPOP's gate as exp(ls(x/tau) - x)), finite and with
finite gradients for margins up to +-1e3 at its default constants.

Every entry but ``ipo_norm`` has a derivation in mirror.yaml (its ``seeds``): that
template sums the mirror log-ratios over the response, so it cannot divide them by its
length.
"""

from __future__ import annotations

import dataclasses

from grammar.expr import Expr, Scope, parse
from grammar.losses import Loss
from grammar.primitives import TERMINALS

# Definitions every hand-written loss may use.
ALIASES_TEXT = {
    "r_w": "logp_w - ref_w",
    "r_l": "logp_l - ref_l",
    "m_w": "logp_w / len_w",
    "m_l": "logp_l / len_l",
}


def alias_scope(constants: tuple[str, ...]) -> Scope:
    aliases: dict[str, Expr] = {}
    for name, text in ALIASES_TEXT.items():
        aliases[name] = parse(text, Scope(constants=constants, aliases=dict(aliases)))
    return Scope(terminals=TERMINALS, constants=constants, aliases=aliases)


@dataclasses.dataclass(frozen=True)
class ZooLoss:
    name: str
    text: str
    constants: dict[str, float]
    reference: str
    formula: str  # as the paper writes it, in the notation above

    @property
    def expr(self) -> Expr:
        return parse(self.text, alias_scope(tuple(self.constants)))

    def loss(self) -> Loss:
        """This entry as a loss, at its published constants."""
        return Loss(self.name, self.expr, dict(self.constants), "zoo", self.reference)


_D = "(r_w - r_l)"

ZOO: dict[str, ZooLoss] = {
    z.name: z
    for z in [
        ZooLoss("dpo", f"-log_sigmoid(beta * {_D})", {"beta": 0.1},
                "Rafailov et al. 2023, Direct Preference Optimization (arXiv 2305.18290)",
                "-ls(beta D)"),
        ZooLoss("ipo", f"({_D} - 1 / (2 * beta))^2", {"beta": 0.1},
                "Azar et al. 2023, A General Theoretical Paradigm to Understand Learning from "
                "Human Preferences (arXiv 2310.12036)",
                "(D - 1/(2 beta))^2"),
        ZooLoss("ipo_norm", "(r_w / len_w - r_l / len_l - 1 / (2 * beta))^2", {"beta": 0.1},
                "Azar et al. 2023 (arXiv 2310.12036), Eq. 17 as TRL's DPOTrainer computes it "
                "(loss_type=\"ipo\"): log-ratios divided by the response lengths; `ipo` is the "
                "same loss on summed log-ratios",
                "(r_w/len_w - r_l/len_l - 1/(2 beta))^2"),
        ZooLoss("hinge", f"relu(1 - beta * {_D})", {"beta": 0.1},
                "Zhao et al. 2023, SLiC-HF (arXiv 2305.10425)", "max(0, 1 - beta D)"),
        ZooLoss("cdpo", f"-(1 - eps) * log_sigmoid(beta * {_D}) - eps * log_sigmoid(-beta * {_D})",
                {"beta": 0.1, "eps": 0.1},
                "Mitchell 2023, A note on DPO with noisy preferences (conservative DPO)",
                "-(1-eps) ls(beta D) - eps ls(-beta D)"),
        ZooLoss("rdpo", f"(-(1 - eps) * log_sigmoid(beta * {_D}) + eps * log_sigmoid(-beta * {_D})) "
                        f"/ (1 - 2 * eps)",
                {"beta": 0.1, "eps": 0.1},
                "Chowdhury et al. 2024, Provably Robust DPO (arXiv 2403.00409)",
                "(-(1-eps) ls(beta D) + eps ls(-beta D)) / (1 - 2 eps)"),
        ZooLoss("exo", f"sigmoid(beta * {_D}) * (log_sigmoid(beta * {_D}) - log(1 - eps)) "
                       f"+ sigmoid(-beta * {_D}) * (log_sigmoid(-beta * {_D}) - log(eps))",
                {"beta": 0.1, "eps": 0.001},
                "Ji et al. 2024, Towards Efficient Exact Optimization of Language Model Alignment "
                "(arXiv 2402.00856)",
                "s(beta D)(ls(beta D) - log(1-eps)) + s(-beta D)(ls(-beta D) - log eps)"),
        ZooLoss("nca", "-log_sigmoid(beta * r_w) - 0.5 * log_sigmoid(-beta * r_w) "
                       "- 0.5 * log_sigmoid(-beta * r_l)",
                {"beta": 0.1},
                "Chen et al. 2024, Noise Contrastive Alignment of Language Models (arXiv 2402.05369)",
                "-ls(beta r_w) - 0.5 ls(-beta r_w) - 0.5 ls(-beta r_l)"),
        ZooLoss("bco", "-log_sigmoid(beta * r_w) - log_sigmoid(-beta * r_l)", {"beta": 0.1},
                "Jung et al. 2024, Binary Classifier Optimization (arXiv 2404.04656), "
                "without the running-mean shift",
                "-ls(beta r_w) - ls(-beta r_l)"),
        ZooLoss("sppo", "(r_w - 1 / (2 * beta))^2 + (r_l + 1 / (2 * beta))^2", {"beta": 0.1},
                "Wu et al. 2024, Self-Play Preference Optimization (arXiv 2405.00675), hard labels",
                "(r_w - 1/(2 beta))^2 + (r_l + 1/(2 beta))^2"),
        ZooLoss("apo_zero", "1 - sigmoid(beta * r_w) + sigmoid(beta * r_l)", {"beta": 0.1},
                "D'Oosterlinck et al. 2024, Anchored Preference Optimization (arXiv 2408.06266)",
                "(1 - s(beta r_w)) + s(beta r_l)"),
        ZooLoss("apo_down", f"sigmoid(beta * r_w) + 1 - sigmoid(beta * {_D})", {"beta": 0.1},
                "D'Oosterlinck et al. 2024, Anchored Preference Optimization (arXiv 2408.06266)",
                "s(beta r_w) + 1 - s(beta D)"),
        ZooLoss("discopop", f"(1 - sigmoid(beta * {_D} / tau)) * softplus(-beta * {_D}) "
                            f"+ exp(log_sigmoid(beta * {_D} / tau) - beta * {_D})",
                {"beta": 0.05, "tau": 0.05},
                "Chris Lu et al. 2024, Discovering Preference Optimization Algorithms with and "
                "for Large Language Models (arXiv 2406.08414)",
                "x = beta D: (1 - s(x/tau)) (-ls(x)) + s(x/tau) exp(-x)"),
        ZooLoss("simpo", "-log_sigmoid(beta * (m_w - m_l) - gamma)", {"beta": 2.0, "gamma": 1.0},
                "Meng et al. 2024, SimPO (arXiv 2405.14734)", "-ls(beta (m_w - m_l) - gamma)"),
        ZooLoss("orpo", "-m_w - lam * log_sigmoid(m_w - log1mexp(m_w) - (m_l - log1mexp(m_l)))",
                {"lam": 0.1},
                "Hong et al. 2024, ORPO (arXiv 2403.07691)",
                "-m_w - lam ls(o_w - o_l), o_y = m_y - log(1 - exp(m_y))"),
        ZooLoss("sft_to_dpo", f"(1 - t) * -m_w + t * -log_sigmoid(beta * {_D})", {"beta": 0.1},
                "this project: a simple temporally-aware schedule (SFT early, DPO late), in the "
                "spirit of Alfano et al. 2024 (arXiv 2411.06568), TA-MPO",
                "(1-t)(-m_w) + t(-ls(beta D))"),
        ZooLoss("dpo_tsallis", "-log_sigmoid(beta * (len_w * (expm1(alpha * m_w) - expm1(alpha * ref_w / len_w)) "
                               "- len_l * (expm1(alpha * m_l) - expm1(alpha * ref_l / len_l))) / alpha)",
                {"beta": 0.1, "alpha": 0.5},
                "Alfano et al. 2024, Meta-learning Objectives for Preference Optimization (arXiv "
                "2411.06568): mirror preference optimisation's prototype, DPO with the Tsallis "
                "(q = 1 + alpha) mirror map in place of the log-ratio; alpha -> 0 gives DPO",
                "-ls(beta (u_w - u_l)), u_y = len_y (e^(alpha m_y) - e^(alpha n_y)) / alpha"),
        ZooLoss("dpo_log_odds", "-log_sigmoid(beta * (len_w * (m_w - log1mexp(m_w) - ref_w / len_w "
                                "+ log1mexp(ref_w / len_w)) - len_l * (m_l - log1mexp(m_l) - ref_l / len_l "
                                "+ log1mexp(ref_l / len_l))))",
                {"beta": 0.1},
                "DPO over ORPO's log-odds (Hong et al. 2024, arXiv 2403.07691) as the mirror map "
                "of Alfano et al. 2024 (arXiv 2411.06568): the v2 token winner without its "
                "lam * t factor",
                "-ls(beta (u_w - u_l)), u_y = len_y (o(m_y) - o(n_y)), o(x) = x - log(1 - e^x)"),
        ZooLoss("dpo_scheduled", f"t * -log_sigmoid(beta * {_D})", {"beta": 0.1},
                "this project: DPO (Rafailov et al. 2023, arXiv 2305.18290) switched on linearly "
                "over training, a control for losses whose weight grows with t (under Adam, a "
                "growing factor acts like a larger step)",
                "t (-ls(beta D))"),
        ZooLoss("sft_decay", "-(1 - t) * m_w", {},
                "this project: supervised fine-tuning on the chosen responses with a linear decay "
                "in t (the imitation half of sft_to_dpo alone): a control for what the schedule "
                "does without the preference",
                "-(1-t) m_w"),
        ZooLoss("sft", "-m_w", {},
                "supervised fine-tuning on the chosen responses only (the imitation term of ORPO, "
                "Hong et al. 2024): a control that ignores the rejected response",
                "-m_w"),
    ]
}


def get(name: str) -> ZooLoss:
    from grammar.errors import GrammarError

    if name not in ZOO:
        raise GrammarError(f"unknown zoo loss {name!r}; known: {', '.join(ZOO)}")
    return ZOO[name]
