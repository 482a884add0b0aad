"""A labelled folder (images + labels.tsv) built for the data tests."""

from PIL import Image


def make_folder(root, lines, images=("a.png", "b.png", "c.png", "d.png", "e.png")):
    root.mkdir(parents=True, exist_ok=True)
    for name in images:
        Image.new("L", (60, 20), 255).save(root / name)
    (root / "labels.tsv").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return root


GOOD = ["file\ttext", "a.png\t១២", "# a comment", "", "b.png\t៣", "c.png\t៤៥៦", "d.png\t៧", "e.png\t៨៩"]
