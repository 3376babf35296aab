"""`bench new NAME`: scaffold a submission (bench/adapters/scaffold.py writes it)."""

from __future__ import annotations

from pathlib import Path

from bench.cli.args import command


def cmd_new(args) -> int:
    from bench import REPO_ROOT
    from bench.adapters.scaffold import scaffold
    from bench.core.console import console

    folder = scaffold(args.name, Path(args.root) if args.root else None, author=args.author)
    try:
        shown = folder.relative_to(Path(args.root or REPO_ROOT))
    except ValueError:
        shown = folder
    console.print(f"[green]created[/] {shown}/\n"
                  f"  adapter.py  the model and its adapter (config, train_config, presets): edit the parts marked CHANGE\n"
                  f"  README.md   the model card: authors, paper, licence, training budget, notes\n"
                  f"next:\n"
                  f"  bench check {args.name}                        # the contract, in seconds\n"
                  f"  bench run --model {args.name} --preset quick   # train (minutes on a CPU), score, results/ + leaderboard\n"
                  f"guide: submissions/README.md", soft_wrap=True, highlight=False)
    return 0


def register(subparsers) -> None:
    p = command(subparsers, "new", cmd_new, help="scaffold a submission: submissions/<name>/adapter.py + README.md "
                "(model card)")
    p.add_argument("name", help="model name: lowercase letters, digits and '-', e.g. my-mask-net")
    p.add_argument("--author", default=None, help="model card author (default: git config user.name)")
    p.add_argument("--root", default=None, help="folder holding baselines/ and submissions/ (default: the repository)")
