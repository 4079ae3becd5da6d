"""The penalty λ·Ω(θ_f, θ_f⁰) of the article, as L2-SP (notebook 05; used again in 06, 09-12).

Li, Grandvalet and Davoine, *Explicit Inductive Bias for Transfer Learning with Convolutional
Networks* (ICML 2018), penalise fine-tuning for moving away from the *starting point*:

    Ω(θ) = α/2 · ‖θ_f − θ_f⁰‖²  +  β/2 · ‖θ_head‖²

θ_f are the transferred weights (the pretrained body), θ_f⁰ their pretrained values, and the
new head, which has no pretrained value, gets ordinary weight decay. Plain weight decay is the
special case θ_f⁰ = 0: it pulls every weight toward zero, L2-SP toward what pretraining learned.

    penalty = cu.penalty.L2SP(model, alpha=0.01, beta=0.01)   # snapshot of the start, now
    loss = criterion(model(X), y) + penalty(model)            # the plain loop
    learn.fit(5, cbs=cu.penalty.fastai_callback(penalty))     # fastai

The snapshot is a detached copy, never trained, that follows the model to its device and dtype.
Only parameters that train at the time of the call count: a frozen block adds nothing.
Use no weight decay in the optimizer on top (fastai's default ``wd`` is 0.01: pass ``wd=0``).
"""

import torch

from course_utils import models


class L2SP:
    """α/2·‖θ_f − θ_f⁰‖² + β/2·‖θ_head‖² for ``model``, whose current weights are θ_f⁰.

    ``head`` is the new head: a module inside ``model`` or its name; by default the head of a
    course model (``cu.models.head_name``). Pass ``head=learn.model[1]`` for a fastai learner.
    """

    def __init__(self, model, alpha, beta=0.0, head=None):
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta are weights of a penalty: >= 0, not {alpha}, {beta}")
        self.alpha, self.beta = float(alpha), float(beta)
        model = models.unwrap(model)
        if head is None:
            head = models.head_name(model)
        head_module = model.get_submodule(head) if isinstance(head, str) else head
        head_ids = {id(p) for p in head_module.parameters()}
        if not head_ids or not head_ids <= {id(p) for p in model.parameters()}:
            raise ValueError("the head must be a part of the model that has parameters")
        self.head = [name for name, p in model.named_parameters() if id(p) in head_ids]
        # The starting point: a copy outside the model, so no optimizer can ever train it.
        self.start = {name: p.detach().clone() for name, p in model.named_parameters()
                      if id(p) not in head_ids}

    def _pairs(self, model):
        """(parameter, its starting value) of the transferred weights that train now."""
        for name, p in models.unwrap(model).named_parameters():
            if name in self.start and p.requires_grad:
                start = self.start[name]
                if start.device != p.device or start.dtype != p.dtype:
                    start = self.start[name] = start.to(p.device, p.dtype)  # moved once, kept
                yield p, start

    def body_term(self, model):
        """α/2·‖θ_f − θ_f⁰‖² over the transferred weights that train."""
        terms = [(p - start).pow(2).sum() for p, start in self._pairs(model)]
        return self.alpha / 2 * torch.stack(terms).sum() if terms else self._zero(model)

    def head_term(self, model):
        """β/2·‖θ_head‖²."""
        named = dict(models.unwrap(model).named_parameters())
        terms = [named[name].pow(2).sum() for name in self.head if named[name].requires_grad]
        return self.beta / 2 * torch.stack(terms).sum() if terms else self._zero(model)

    def __call__(self, model):
        """The penalty, a scalar tensor to add to the loss."""
        return self.body_term(model) + self.head_term(model)

    @torch.no_grad()
    def drift(self, model):
        """‖θ_f − θ_f⁰‖ over all transferred weights (trained or not): how far fine-tuning went."""
        named = dict(models.unwrap(model).named_parameters())
        total = sum(float((named[name].float() - start.to(named[name].device).float()).pow(2).sum())
                    for name, start in self.start.items())
        return total ** 0.5

    @staticmethod
    def _zero(model):
        p = next(models.unwrap(model).parameters())
        return torch.zeros((), device=p.device, dtype=p.dtype)


def fastai_callback(penalty):
    """A fastai ``Callback`` that adds ``penalty(learn.model)`` to the loss it back-propagates.

    The recorded training loss stays the data's loss (fastai records ``learn.loss``, a copy
    taken before this callback runs), so runs with and without the penalty compare directly."""
    # fastai takes seconds to import; the plain loop above does not need it.
    from fastai.callback.core import Callback

    class L2SPCallback(Callback):
        order = 10  # after the loss, before backward

        def after_loss(self):
            if self.training:
                self.learn.loss_grad = self.learn.loss_grad + penalty(self.learn.model)

    return L2SPCallback()
