"""Reading the documentation the way a user copies from it."""


def indented_block(path, first_line):
    """The lines of the indented (code) block of Markdown file `path` that
    starts with first_line, without their indentation, first_line left
    out: what a user copies into a file."""
    lines = path.read_text().splitlines()
    start = lines.index("    " + first_line)
    block = []
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        block.append(line[4:])
    return block
