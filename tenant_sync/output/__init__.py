"""What a run shows people: the terminal summary, live progress and the HTML report.

* :mod:`.summary`: :func:`~.summary.format_summary`, a report as text for a terminal;
* :mod:`.progress`: :class:`~.progress.LiveProgress`, the redrawn line on a terminal
  (pass it as ``on_result``), and the log's progress lines;
* :mod:`.html`: :func:`~.html.write_html`, a report as one self-contained page (its
  page, style and script in ``assets/``);
* :mod:`.selection`: :func:`~.selection.format_selection`, which schemas are tenants and
  by which rule, as ``tenant-sync list`` prints it.

Each works on a :class:`~tenant_sync.SyncReport` or its results only, but the last, on a
:class:`~tenant_sync.Selection`.
"""
