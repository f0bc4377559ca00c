"""The training loss of the methods that record one (the fine-tuned reward models): per model,
one panel per method, one line per dataset it was fitted on, loss against optimiser step."""

from pathlib import Path

from matplotlib.figure import Figure

from genies.figures.layout import panel_grid


def read_losses(infos: dict[str, dict]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """{model: {method: {fitted on: losses}}} of the fitted states (path -> facts) whose method
    recorded a loss per step."""
    curves: dict = {}
    for path, info in infos.items():
        losses = info.get("fitted", {}).get("loss")
        if losses:
            source = Path(path).stem
            curves.setdefault(info["model"], {}).setdefault(info["intervention"], {})
            curves[info["model"]][info["intervention"]][source] = losses
    return curves


def training_loss_figure(model: str, methods: dict[str, dict[str, list[float]]]) -> Figure:
    fig = Figure(figsize=(5 * min(len(methods), 3), 3.6 * ((len(methods) + 2) // 3)))
    axes = panel_grid(fig, len(methods), 3, sharey=True)
    for ax, (method, runs) in zip(axes, sorted(methods.items()), strict=True):
        for source, losses in sorted(runs.items()):
            ax.plot(range(1, len(losses) + 1), losses, linewidth=1, alpha=0.7, label=source)
        ax.axhline(0.6931, color="grey", linestyle=":", linewidth=1)  # log 2: chance
        ax.set(title=method, xlabel="step", ylabel="Bradley-Terry loss")
        if len(runs) <= 12:
            ax.legend(fontsize=6)
    fig.suptitle(f"{model}: training loss per fit (dotted: chance, log 2)")
    fig.tight_layout()
    return fig


def training_figures(infos: dict[str, dict]) -> dict:
    """Builders of `training_loss_<model>` for each model with a recorded loss."""
    return {
        f"training_loss_{model}": (
            lambda model=model, methods=methods: training_loss_figure(model, methods)
        )
        for model, methods in read_losses(infos).items()
    }
