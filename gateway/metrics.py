"""Prometheus metrics, one registry per app (no import-time globals, so tests can run many
apps in one process and each metric can be checked to move only when its event happens).

Names are contracts and documented in ``docs/operations.md``.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # The process's own figures (memory, CPU seconds, open file descriptors, GC passes,
        # the Python version): the default registry has them, a custom one does not, and
        # dashboards and alerts need them (media CPU, fd exhaustion, a GC storm). They read
        # /proc and gc.get_stats() at scrape time only, so they cost nothing between scrapes.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.sockets = Gauge("livedesk_sockets", "Open WebSocket connections", registry=r)
        self.sessions = Gauge("livedesk_sessions", "Sessions held by this node", registry=r)
        self.protocol_errors = Counter("livedesk_protocol_errors_total",
                                       "Typed errors sent to clients", ["code"], registry=r)
        # frames that could not be encoded were dropped, the session went on
        self.frames_dropped = Counter("livedesk_frames_dropped_total",
                                      "Frames dropped because they could not be encoded",
                                      registry=r)
        self.sockets_refused = Counter("livedesk_sockets_refused_total",
                                       "WebSockets closed by the edge before or at hello, by "
                                       "reason", ["reason"], registry=r)
        self.messages = Counter("livedesk_messages_total", "Chat messages stored",
                                ["role"], registry=r)
        self.first_response = Histogram(
            "livedesk_first_response_seconds",
            "First human reply after escalation", buckets=LATENCY_BUCKETS, registry=r)
        self.bot_first_response = Histogram(
            "livedesk_bot_first_response_seconds",
            "Bot reply latency to a viewer's first message",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2), registry=r)
        self.conversations = Counter("livedesk_conversations_total",
                                     "Conversations ended, by outcome", ["outcome"], registry=r)
        self.csat = Histogram("livedesk_csat_rating", "CSAT ratings (1-5)",
                              buckets=(1, 2, 3, 4, 5), registry=r)
        self.queue_length = Gauge("livedesk_queue_length", "Conversations waiting for an agent",
                                  registry=r)
        self.queue_wait = Histogram("livedesk_queue_wait_seconds",
                                    "Time from escalation to assignment",
                                    buckets=LATENCY_BUCKETS, registry=r)
        self.calls = Counter("livedesk_calls_total", "Calls ended, by outcome", ["outcome"],
                             registry=r)
        self.compensation = Counter("livedesk_compensation_amount_total",
                                    "Compensation granted", ["kind"], registry=r)
        self.conversions = Counter("livedesk_conversions_total",
                                   "Orders within the window after a support conversation",
                                   ["room"], registry=r)
        self.agents = Gauge("livedesk_agents", "Agents by status", ["status"], registry=r)
        self.escalations = Counter("livedesk_escalations_total", "Escalations by source",
                                   ["source"], registry=r)
        self.bot_replies = Counter("livedesk_bot_replies_total", "Bot replies by intent",
                                   ["intent"], registry=r)
        self.bot_reply = Histogram(
            "livedesk_bot_reply_seconds",
            "Time the responder took for one bot turn (the offline bot runs on the serving loop)",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1),
            registry=r)
        self.orders = Counter("livedesk_orders_total", "Shop orders by result", ["result"],
                              registry=r)
        self.replica_resyncs = Counter(
            "livedesk_replica_resyncs_total",
            "Times this node rebuilt its support-state replica from Redis, by reason",
            ["reason"], registry=r)
        # the durable store (docs/storage.md)
        self.store_write_failures = Counter(
            "livedesk_store_write_failures_total",
            "Write batches the durable store failed to commit (held and retried; steps are "
            "refused meanwhile)", registry=r)
        self.restored_conversations = Gauge(
            "livedesk_restored_conversations",
            "Open conversations this node loaded from the durable store when it started",
            registry=r)
        self.erased_viewers = Counter(
            "livedesk_erased_viewers_total",
            "Viewers erased from this node's live state (store erasures reaching memory)",
            registry=r)

        # the multi-node archiver (gateway/archiver.py, docs/operations.md#archiver)
        self.archiver_leader = Gauge(
            "livedesk_archiver_leader",
            "1 while this node holds the archiver lease (exactly one node per cluster)",
            registry=r)
        self.archiver_lag_seconds = Gauge(
            "livedesk_archiver_lag_seconds",
            "Age of the oldest change-stream entry not archived in PostgreSQL yet (0: caught up)",
            registry=r)
        self.archiver_lag_entries = Gauge(
            "livedesk_archiver_lag_entries",
            "Change-stream entries not archived in PostgreSQL yet", registry=r)
        self.archiver_entries = Counter(
            "livedesk_archiver_entries_total",
            "Change-stream entries this node archived in PostgreSQL", registry=r)
        self.archiver_fence_refusals = Counter(
            "livedesk_archiver_fence_refusals_total",
            "Archive batches refused because a newer archiver (higher fencing number) wrote",
            registry=r)
        self.archiver_lost_entries = Counter(
            "livedesk_archiver_lost_entries_total",
            "Change-stream entries never archived, by reason (trimmed: dropped by the "
            "stream's safety cap before the archiver read them; malformed: unreadable)",
            ["reason"], registry=r)
        # a Redis that restarted empty, repopulated from PostgreSQL (gateway/restore.py,
        # docs/operations.md#redis-restarted-empty)
        self.redis_repopulations = Counter(
            "livedesk_redis_repopulations_total",
            "Times this node repopulated a Redis that had lost its data from the archive",
            registry=r)
        self.redis_repopulated = Counter(
            "livedesk_redis_repopulated_total",
            "What this node wrote back into Redis from the archive, by kind (conversations, "
            "messages, agents, records, rooms, orders)", ["kind"], registry=r)
        self.redis_unrestored = Counter(
            "livedesk_redis_unrestored_total",
            "What the archive held but a repopulation could not put back, by reason "
            "(present: Redis already held a newer one; superseded: the viewer opened another "
            "conversation in the room meanwhile; room_not_configured)", ["reason"],
            registry=r)
        # question radar, anomaly flags, surge, webhooks (docs/operations.md)
        self.anomaly_flags = Gauge(
            "livedesk_anomaly_flag",
            "1 while a product's complaint / return_refund / safety rate is flagged "
            "(docs/webhooks.md: the rule)", ["room", "sku", "kind"], registry=r)
        self.anomalies_raised = Counter("livedesk_anomalies_raised_total",
                                        "Anomaly flags raised, by kind", ["kind"], registry=r)
        self.surge = Gauge("livedesk_surge", "1 while the room is in surge mode", ["room"],
                           registry=r)
        self.callbacks = Counter("livedesk_surge_callbacks_total",
                                 "Call requests answered with a callback slot during surge",
                                 ["room"], registry=r)
        self.webhooks = Counter("livedesk_webhook_deliveries_total",
                                "Webhook delivery attempts by result (delivered, retried, "
                                "failed)", ["result"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
