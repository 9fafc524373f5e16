"""Distillation: train a (pruned) student to reproduce a dense teacher's outputs on unlabeled data."""
import torch
import torch.nn.functional as F

from .oneshot import _call, _to
from .progress import Progress


def model_output(model, batch):
    """What distill compares: `logits` where the output has them; for a Hugging Face encoder the
    sentence embedding (last_hidden_state averaged over the batch's attention_mask, as
    sentence-transformers pools); else the output tensor (or its first element)."""
    out = _call(model, batch)
    if hasattr(out, "logits"):
        return out.logits
    if hasattr(out, "last_hidden_state"):
        hidden = out.last_hidden_state
        mask = batch.get("attention_mask") if isinstance(batch, dict) else None
        if mask is None:
            return hidden.mean(dim=1)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


def distill_loss(student_out, teacher_out, loss="kl", temperature=2.0):
    """kl: Hinton's soft-target loss on logits, KL(teacher || student) at `temperature`, times T^2;
    cosine: 1 - cosine similarity per sample (embeddings); mse: mean squared error; or a function
    of (student_out, teacher_out)."""
    if callable(loss):
        return loss(student_out, teacher_out)
    if loss == "kl":
        t = temperature
        return F.kl_div(F.log_softmax(student_out / t, dim=-1), F.log_softmax(teacher_out / t, dim=-1),
                        reduction="batchmean", log_target=True) * t * t
    if loss == "cosine":
        return (1.0 - F.cosine_similarity(student_out, teacher_out, dim=-1)).mean()
    if loss == "mse":
        return F.mse_loss(student_out, teacher_out)
    raise ValueError(f"loss must be 'kl', 'cosine' or 'mse', got {loss!r}")


def distill(student, teacher, batches, optimizer, *, steps, loss="kl", temperature=2.0, output=model_output,
            pruner=None, scheduler=None, train_mode=True, progress=True):
    """Trains `student` for `steps` optimizer steps to match `teacher` (frozen) on unlabeled
    `batches` (an iterable of model inputs: tensors, tuples, or dicts of keyword arguments; it is
    iterated again when it runs out). With a GradualPruner on the same optimizer the student is
    pruned as it learns (the pruner's bar shows density and loss); `output(model, batch)` picks
    what is compared (model_output's default suits classifiers and Hugging Face encoders).
    train_mode=False keeps the student in eval mode (no dropout, frozen batch-norm statistics), as
    the teacher runs. Returns the last loss.

        teacher = copy.deepcopy(model).eval()
        opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
        pruner = GradualPruner(model, opt, density={"linear": 0.2}, group=4, end_step=3000)
        distill(model, teacher, batches, opt, steps=4000, loss="cosine", pruner=pruner)
        pruner.finish()"""
    device = next(student.parameters()).device
    teacher.eval()
    student.train(train_mode)
    bar = Progress(steps, "distilling") if progress and pruner is None else None
    value = None
    batch_iter = iter(batches)
    try:
        for step in range(1, steps + 1):
            try:
                batch = next(batch_iter)
            except StopIteration:
                batch_iter = iter(batches)
                batch = next(batch_iter)
            batch = _to(batch, device)
            with torch.no_grad():
                target = output(teacher, batch)
            current = distill_loss(output(student, batch), target, loss, temperature)
            optimizer.zero_grad(set_to_none=True)
            current.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            value = float(current.detach())
            if pruner is not None:
                pruner.log(value)
            elif bar:
                bar.update(step, loss=value)
    finally:
        student.eval()
        if bar:
            bar.close()
    return value
