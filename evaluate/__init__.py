"""Audits over curated data and generations: judges -> audits -> tidy parquet -> HTML report.

The flow, one module each:

- ``config`` reads AUDIT.yaml; ``runner`` runs the named audits with an ``AuditContext``
  (``context``: inputs, the judge, judgments shared between audits, written to judgments.parquet);
- ``judges`` (``judge_world``, ``judge_clip``) map images to the world's attributes;
- ``audits/`` holds one module per audit, registered in ``AUDITS``; each returns a tidy table built
  with ``tables`` (value, n, 95% interval; counted skips as rows) and ``stats``;
- ``attacks`` are the image transforms of the watermark audit; ``urls`` and ``shift`` serve the
  data audits; ``labels`` stores human labels the dashboard writes;
- ``folder`` is the audit folder's layout: how a run replaces the previous one (staged, run.json
  last) and how readers get exactly the run's tables;
- ``report`` renders an audit folder into one self-contained HTML file.
"""
