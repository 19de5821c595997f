"""The fast path over the per-tenant core: what makes 10,000 tenants take seconds.

* :mod:`.catalog`: one linear pass over the catalog reads every tenant's shape
  (its SQL in ``shape_pass.sql``), and the recheck of one tenant under its lock
  (``stamp.sql``);
* :mod:`.shapes`: one comparison with the model per distinct shape, its
  :class:`~.shapes.ChangeSet`, and the record of shapes that match;
* :mod:`.by_shape`: the stage that runs both for a whole run, :func:`.stream_by_shape`;
* :mod:`.round_trip`: one tenant changed in one round trip, written once for the
  shape path and for signups;
* :mod:`.signup`: the kept plan of an empty schema, for signups without reflection.

Internal: nothing here is public API.
"""
