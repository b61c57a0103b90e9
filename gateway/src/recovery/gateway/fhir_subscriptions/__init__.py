"""FHIR R4 topic-based subscriptions (HL7 Subscriptions R5 Backport IG) at the gateway: the
topics (``topics``), what may be asked (``rules``), the bucket every replica shares
(``store``), notifications from the services' events (``notifier``, ``delivery``), the FHIR
documents (``resources``) and the ``/fhir/Subscription`` routes (``service``, ``routes``).
``docs/fhir-mapping.md`` describes the design."""
