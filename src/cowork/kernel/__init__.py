"""The kernel the domain packages share: one process's state (:class:`Core`), a tenant's unit
of work (:class:`UnitOfWork`), the base of tenant services and the database's clock. It knows
no domain package; they attach their per-process parts to the core (:meth:`Core.part`)."""
