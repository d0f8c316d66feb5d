"""Interactive mode: ``sharklib shell``, a prompt where every command is a recorded step.

``session`` runs lines (through the runner) and holds the loop; ``bashstate``
carries ``cd``/variables/aliases from one line to the next; ``classify`` tells
inspect from mutate from the record; ``snapshots`` keeps and restores changed
files; ``store`` is the session on disk; ``meta`` the ``:`` commands;
``export`` writes the Markdown pipeline of a result.
"""
