
    const schema = {
  "asyncapi": "3.0.0",
  "info": {
    "title": "HashInsight event bus",
    "version": "0.1.0",
    "description": "Every business write inserts one `event_outbox` row in the same transaction as the write. Debezium\n(Kafka Connect, Postgres source) captures the inserts, keeps the row as it is (`ExtractNewRecordState`),\nkeys it by `user_id` and routes it by `kind` (`<domain>.<event>`) to the topic `events.<domain>`.\nRecord values are Avro ([`EventEnvelope`](./avro/event_envelope.avsc)) registered in the schema registry;\nthe kind-specific data is the JSON text in the envelope's `payload` field, whose shape is the message's\n`x-payload-schema`.\n\n**Topics are defined here and only here:** the Kafka channel bindings below (partitions, replicas,\n`retention.ms`, `cleanup.policy`) are what topic creation (`make topics`) applies. `replicas` is the\nproduction replication factor; on a cluster with fewer brokers (the one-node dev stack) a topic gets one\nreplica per broker.\n\n**Keys.** The record key of every topic is the `user_id` as a plain UTF-8 string, so all events of one\nuser land in one partition, in order.\n\n**Headers.** Consumers need no header of event records to process them: everything is in the envelope.\nOne header is ours: `traceparent`, the W3C trace context of the request that wrote the event (the\nconnector moves `event_outbox.traceparent` there), which the consumers continue in their spans; a record\nwithout it simply starts a new trace. Whatever else the connector adds (Debezium's\n`__debezium.context.*`, ...) is ignored. Dead letters carry the `dlq.*` headers below, and the original\nrecord's `traceparent`, which a redrive passes on.\n\n**Delivery** is at least once. Consumers dedupe on the envelope `id` through\n`consumer_inbox(consumer_name, event_id)`, written in the same transaction as their effect; a record\nthat fails validation or exhausts its retries goes to `events.dlq` as a `DeadLetter`.\n\n**Payload evolution.** Avro schemas in `avro/` change only BACKWARD-compatibly (new fields need a\ndefault); `make contracts-check` enforces it against the last commit. Consumers ignore unknown payload\nfields, so producers may add fields first.\n",
    "contact": {
      "name": "HashInsight platform team"
    }
  },
  "defaultContentType": "avro/binary",
  "servers": {
    "local": {
      "host": "127.0.0.1:19092",
      "protocol": "kafka",
      "description": "The native dev stack (`make dev`); docker compose publishes the same broker. The schema registry is\nApicurio Registry with its Confluent-compatible API.\n",
      "bindings": {
        "kafka": {
          "schemaRegistryUrl": "http://127.0.0.1:18081/apis/ccompat/v7",
          "schemaRegistryVendor": "apicurio",
          "bindingVersion": "0.5.0"
        }
      }
    }
  },
  "channels": {
    "minerEvents": {
      "address": "events.miner",
      "title": "events.miner",
      "description": "Fleet events of `miners` / `user_miners` writes (POST /api/miners, PATCH /api/miners/{id}, PATCH /api/miners/{id}/status, POST /api/miners/bulk).",
      "messages": {
        "minerAdded": {
          "name": "miner.added",
          "title": "Miner added",
          "summary": "A user added one miner (POST /api/miners).",
          "contentType": "avro/binary",
          "headers": {
            "type": "object",
            "description": "`traceparent` (W3C trace context) when the writing request had one; consumers ignore every other header\n(Debezium's `__debezium.context.*`, registry converter headers, ...).\n",
            "properties": {
              "traceparent": {
                "type": "string",
                "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": "The span of the request that wrote the event; the consumers' spans continue its trace.",
                "x-parser-schema-id": "<anonymous-schema-1>"
              }
            },
            "additionalProperties": true,
            "x-parser-schema-id": "EventHeaders"
          },
          "payload": {
            "schemaFormat": "application/vnd.apache.avro;version=1.9.0",
            "schema": {
              "type": "object",
              "required": [
                "id",
                "kind",
                "user_id",
                "tenant_id",
                "payload",
                "created_at",
                "processed"
              ],
              "properties": {
                "id": {
                  "type": "string",
                  "description": "Event id (a UUID in text form, event_outbox.id). Consumers dedupe on it through consumer_inbox(consumer_name, event_id).",
                  "x-parser-schema-id": "<anonymous-schema-2>"
                },
                "kind": {
                  "type": "string",
                  "description": "Event kind `<domain>.<event>`, e.g. miner.added; the domain names the topic events.<domain>.",
                  "x-parser-schema-id": "<anonymous-schema-3>"
                },
                "user_id": {
                  "type": "string",
                  "description": "Owner of the event (JWT sub). Also the Kafka record key, so one user's events stay ordered in one partition.",
                  "x-parser-schema-id": "<anonymous-schema-4>"
                },
                "tenant_id": {
                  "type": "string",
                  "description": "Tenant of the user; consumers set app.tenant_id from it before touching tenant tables (RLS).",
                  "x-parser-schema-id": "<anonymous-schema-5>"
                },
                "entity_id": {
                  "oneOf": [
                    {
                      "type": "string",
                      "x-parser-schema-id": "<anonymous-schema-7>"
                    },
                    {
                      "type": "null",
                      "x-parser-schema-id": "<anonymous-schema-8>"
                    }
                  ],
                  "description": "Id of the entity the event is about (a miner id, a trade id), or null for events about many entities (miner.bulk_imported).",
                  "default": null,
                  "x-parser-schema-id": "<anonymous-schema-6>"
                },
                "payload": {
                  "type": "string",
                  "description": "The kind's payload as JSON text (Debezium delivers jsonb as a JSON string). Validated against the payload schema of `kind` before use.",
                  "x-parser-schema-id": "<anonymous-schema-9>"
                },
                "idempotency_key": {
                  "oneOf": [
                    {
                      "type": "string",
                      "x-parser-schema-id": "<anonymous-schema-11>"
                    },
                    {
                      "type": "null",
                      "x-parser-schema-id": "<anonymous-schema-12>"
                    }
                  ],
                  "description": "Idempotency-Key of the HTTP write that produced the event, or null when the client sent none.",
                  "default": null,
                  "x-parser-schema-id": "<anonymous-schema-10>"
                },
                "created_at": {
                  "type": "string",
                  "description": "When the business transaction wrote the event: ISO-8601 UTC with microseconds, e.g. 2025-01-15T09:30:00.123456Z.",
                  "x-parser-schema-id": "<anonymous-schema-13>"
                },
                "processed": {
                  "type": "boolean",
                  "description": "Outbox bookkeeping column; always false in captured inserts. Consumers ignore it.",
                  "x-parser-schema-id": "<anonymous-schema-14>"
                },
                "trace_id": {
                  "oneOf": [
                    {
                      "type": "string",
                      "x-parser-schema-id": "<anonymous-schema-16>"
                    },
                    {
                      "type": "null",
                      "x-parser-schema-id": "<anonymous-schema-17>"
                    }
                  ],
                  "description": "W3C trace id (32 hex digits) of the request that produced the event, or null.",
                  "default": null,
                  "x-parser-schema-id": "<anonymous-schema-15>"
                }
              },
              "description": "The value of every record on events.miner, events.treasury, events.ops, events.crm and events.market: one event_outbox row as Debezium delivers it after ExtractNewRecordState. The kind-specific data is the JSON text in `payload`; its shape is the payload schema named by `kind` (see asyncapi.yaml).",
              "x-parser-schema-id": "io.hashinsight.events.EventEnvelope"
            },
            "x-parser-original-payload": {
              "type": "record",
              "name": "EventEnvelope",
              "namespace": "io.hashinsight.events",
              "doc": "The value of every record on events.miner, events.treasury, events.ops, events.crm and events.market: one event_outbox row as Debezium delivers it after ExtractNewRecordState. The kind-specific data is the JSON text in `payload`; its shape is the payload schema named by `kind` (see asyncapi.yaml).",
              "fields": [
                {
                  "name": "id",
                  "type": "string",
                  "doc": "Event id (a UUID in text form, event_outbox.id). Consumers dedupe on it through consumer_inbox(consumer_name, event_id)."
                },
                {
                  "name": "kind",
                  "type": "string",
                  "doc": "Event kind `<domain>.<event>`, e.g. miner.added; the domain names the topic events.<domain>."
                },
                {
                  "name": "user_id",
                  "type": "string",
                  "doc": "Owner of the event (JWT sub). Also the Kafka record key, so one user's events stay ordered in one partition."
                },
                {
                  "name": "tenant_id",
                  "type": "string",
                  "doc": "Tenant of the user; consumers set app.tenant_id from it before touching tenant tables (RLS)."
                },
                {
                  "name": "entity_id",
                  "type": [
                    "null",
                    "string"
                  ],
                  "default": null,
                  "doc": "Id of the entity the event is about (a miner id, a trade id), or null for events about many entities (miner.bulk_imported)."
                },
                {
                  "name": "payload",
                  "type": "string",
                  "doc": "The kind's payload as JSON text (Debezium delivers jsonb as a JSON string). Validated against the payload schema of `kind` before use."
                },
                {
                  "name": "idempotency_key",
                  "type": [
                    "null",
                    "string"
                  ],
                  "default": null,
                  "doc": "Idempotency-Key of the HTTP write that produced the event, or null when the client sent none."
                },
                {
                  "name": "created_at",
                  "type": "string",
                  "doc": "When the business transaction wrote the event: ISO-8601 UTC with microseconds, e.g. 2025-01-15T09:30:00.123456Z."
                },
                {
                  "name": "processed",
                  "type": "boolean",
                  "doc": "Outbox bookkeeping column; always false in captured inserts. Consumers ignore it."
                },
                {
                  "name": "trace_id",
                  "type": [
                    "null",
                    "string"
                  ],
                  "default": null,
                  "doc": "W3C trace id (32 hex digits) of the request that produced the event, or null."
                }
              ]
            },
            "x-parser-schema-id": "EventEnvelope"
          },
          "x-payload-schema": {
            "type": "record",
            "name": "MinerAdded",
            "namespace": "io.hashinsight.events",
            "doc": "Payload of kind miner.added: a user added one miner to their fleet (POST /api/miners).",
            "fields": [
              {
                "name": "miner_id",
                "type": {
                  "type": "string",
                  "logicalType": "uuid"
                },
                "doc": "Id of the new miner (miners.id)."
              },
              {
                "name": "model_id",
                "type": "string",
                "doc": "Miner model slug (miner_models.id), e.g. antminer-s21."
              },
              {
                "name": "status",
                "type": {
                  "type": "enum",
                  "name": "MinerStatus",
                  "doc": "Lifecycle status of a miner; only active miners hash.",
                  "symbols": [
                    "active",
                    "idle",
                    "maintenance",
                    "offline",
                    "retired"
                  ]
                },
                "doc": "Status the miner was created with."
              },
              {
                "name": "label",
                "type": [
                  "null",
                  "string"
                ],
                "default": null,
                "doc": "Free-text label the user gave the miner, or null."
              },
              {
                "name": "serial_number",
                "type": [
                  "null",
                  "string"
                ],
                "default": null,
                "doc": "Serial number (unique per tenant when given), or null."
              },
              {
                "name": "hashrate_ths",
                "type": "double",
                "doc": "Effective hashrate in TH/s: the miner's override, else the model's."
              },
              {
                "name": "power_w",
                "type": "int",
                "doc": "Effective power draw in watts: the miner's override, else the model's."
              }
            ]
          },
          "bindings": {
            "kafka": {
              "key": {
                "type": "string",
                "minLength": 1,
                "maxLength": 128,
                "description": "Record key: the user_id (JWT sub) as plain UTF-8, the same value as the envelope's user_id.",
                "examples": [
                  "demo-user-1"
                ]
              },
              "bindingVersion": "0.5.0"
            }
          },
          "examples": [
            {
              "name": "minerAdded",
              "summary": "demo-user-1 added an Antminer S21.",
              "payload": {
                "id": "2c9a6f1e-4b7d-4e8a-9c3f-1d5e7a9b0c21",
                "kind": "miner.added",
                "user_id": "demo-user-1",
                "tenant_id": "demo-tenant",
                "entity_id": "0b6f3c1e-8d2a-4f57-9c1e-5a7b3d9e2f10",
                "payload": "{\"miner_id\": \"0b6f3c1e-8d2a-4f57-9c1e-5a7b3d9e2f10\", \"model_id\": \"antminer-s21\", \"status\": \"active\", \"label\": \"Rack A1 slot 4\", \"serial_number\": \"HI-DOC-S21-000001\", \"hashrate_ths\": 200.0, \"power_w\": 3500}",
                "idempotency_key": "3f0c2a9e-5d7b-4c1e-9f3a-2b8d6e4a7c10",
                "created_at": "2025-01-15T09:30:00.123456Z",
                "processed": false,
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"
              }
            }
          ],
          "x-parser-unique-object-id": "minerAdded"
        },
        "minerStatusChanged": {
          "name": "miner.status_changed",
          "title": "Miner status changed",
          "summary": "A miner moved to another status (PATCH /api/miners/{id}/status).",
          "contentType": "avro/binary",
          "headers": "$ref:$.channels.minerEvents.messages.minerAdded.headers",
          "payload": "$ref:$.channels.minerEvents.messages.minerAdded.payload",
          "x-payload-schema": {
            "type": "record",
            "name": "MinerStatusChanged",
            "namespace": "io.hashinsight.events",
            "doc": "Payload of kind miner.status_changed: a miner moved from one status to another (PATCH /api/miners/{id}/status).",
            "fields": [
              {
                "name": "miner_id",
                "type": {
                  "type": "string",
                  "logicalType": "uuid"
                },
                "doc": "Id of the miner (miners.id)."
              },
              {
                "name": "from_status",
                "type": {
                  "type": "enum",
                  "name": "MinerStatus",
                  "doc": "Lifecycle status of a miner; only active miners hash.",
                  "symbols": [
                    "active",
                    "idle",
                    "maintenance",
                    "offline",
                    "retired"
                  ]
                },
                "doc": "Status before the change."
              },
              {
                "name": "to_status",
                "type": "MinerStatus",
                "doc": "Status after the change; never equal to from_status."
              },
              {
                "name": "reason",
                "type": [
                  "null",
                  "string"
                ],
                "default": null,
                "doc": "Why the status changed, as the user wrote it, or null."
              }
            ]
          },
          "bindings": "$ref:$.channels.minerEvents.messages.minerAdded.bindings",
          "examples": [
            {
              "name": "minerIdled",
              "summary": "The demo miner was idled for curtailment.",
              "payload": {
                "id": "6e1b3d5f-7a9c-4b2e-8d0f-3a5c7e9b1d42",
                "kind": "miner.status_changed",
                "user_id": "demo-user-1",
                "tenant_id": "demo-tenant",
                "entity_id": "7d1c1f8e-2f5b-4b8e-9a53-0c6f4b8a1d01",
                "payload": "{\"miner_id\": \"7d1c1f8e-2f5b-4b8e-9a53-0c6f4b8a1d01\", \"from_status\": \"active\", \"to_status\": \"idle\", \"reason\": \"Curtailment during the evening price peak\"}",
                "idempotency_key": "c4e6a8b0-2d4f-4b6a-8c0e-1f3b5d7a9c12",
                "created_at": "2025-01-15T09:32:00.000001Z",
                "processed": false,
                "trace_id": null
              }
            }
          ],
          "x-parser-unique-object-id": "minerStatusChanged"
        },
        "minerBulkImported": {
          "name": "miner.bulk_imported",
          "title": "Miners bulk imported",
          "summary": "ONE event for a whole bulk import (POST /api/miners/bulk), carrying the count.",
          "contentType": "avro/binary",
          "headers": "$ref:$.channels.minerEvents.messages.minerAdded.headers",
          "payload": "$ref:$.channels.minerEvents.messages.minerAdded.payload",
          "x-payload-schema": {
            "type": "record",
            "name": "MinerBulkImported",
            "namespace": "io.hashinsight.events",
            "doc": "Payload of kind miner.bulk_imported: ONE event for a whole POST /api/miners/bulk batch (not one per miner).",
            "fields": [
              {
                "name": "count",
                "type": "int",
                "doc": "Number of miners the batch created (1..10000)."
              },
              {
                "name": "batch_id",
                "type": {
                  "type": "string",
                  "logicalType": "uuid"
                },
                "doc": "Id of the import batch; also returned by the HTTP call."
              },
              {
                "name": "model_ids",
                "type": {
                  "type": "array",
                  "items": "string"
                },
                "doc": "Distinct miner model slugs in the batch, sorted."
              }
            ]
          },
          "bindings": "$ref:$.channels.minerEvents.messages.minerAdded.bindings",
          "examples": [
            {
              "name": "bulkOfThree",
              "summary": "Three miners of three models imported at once.",
              "payload": {
                "id": "8f3d5b7a-9c1e-4d6f-a2b4-5c7e9a1b3d63",
                "kind": "miner.bulk_imported",
                "user_id": "demo-user-1",
                "tenant_id": "demo-tenant",
                "entity_id": null,
                "payload": "{\"count\": 3, \"batch_id\": \"5f2e8a41-3c6d-4b9e-8a17-2d4c6e8f0a13\", \"model_ids\": [\"antminer-s19-pro\", \"avalon-a1466\", \"whatsminer-m50s\"]}",
                "idempotency_key": "8b2d4f6a-1c3e-4a5b-9d7f-0e2a4c6b8d11",
                "created_at": "2025-01-15T09:31:00.000001Z",
                "processed": false,
                "trace_id": null
              }
            }
          ],
          "x-parser-unique-object-id": "minerBulkImported"
        },
        "minerUpdated": {
          "name": "miner.updated",
          "title": "Miner updated",
          "summary": "A miner's label, hosting site or pool changed (PATCH /api/miners/{id}); no secret is carried.",
          "contentType": "avro/binary",
          "headers": "$ref:$.channels.minerEvents.messages.minerAdded.headers",
          "payload": "$ref:$.channels.minerEvents.messages.minerAdded.payload",
          "x-payload-schema": {
            "type": "record",
            "name": "MinerUpdated",
            "namespace": "io.hashinsight.events",
            "doc": "Payload of kind miner.updated: a miner's details changed (PATCH /api/miners/{id}). Names the changed fields only; a pool password never travels on the bus.",
            "fields": [
              {
                "name": "miner_id",
                "type": {
                  "type": "string",
                  "logicalType": "uuid"
                },
                "doc": "Id of the miner (miners.id)."
              },
              {
                "name": "changed",
                "type": {
                  "type": "array",
                  "items": "string"
                },
                "doc": "Names of the fields that changed, sorted (label, hosting_site, pool)."
              },
              {
                "name": "pool_password_set",
                "type": "boolean",
                "default": false,
                "doc": "True when the miner has a sealed pool password after the change."
              }
            ]
          },
          "bindings": "$ref:$.channels.minerEvents.messages.minerAdded.bindings",
          "examples": [
            {
              "name": "poolSet",
              "summary": "The demo miner got a pool and a new label.",
              "payload": {
                "id": "4c6e8a0b-2d4f-4a6c-8e0b-1d3f5a7c9e21",
                "kind": "miner.updated",
                "user_id": "demo-user-1",
                "tenant_id": "demo-tenant",
                "entity_id": "7d1c1f8e-2f5b-4b8e-9a53-0c6f4b8a1d01",
                "payload": "{\"miner_id\": \"7d1c1f8e-2f5b-4b8e-9a53-0c6f4b8a1d01\", \"changed\": [\"label\", \"pool\"], \"pool_password_set\": true}",
                "idempotency_key": "a7c9e1b3-5d7f-4a9c-8e1b-3d5f7a9c1e43",
                "created_at": "2025-01-15T09:34:00.000001Z",
                "processed": false,
                "trace_id": null
              }
            }
          ],
          "x-parser-unique-object-id": "minerUpdated"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "events.miner",
          "partitions": 6,
          "replicas": 3,
          "topicConfiguration": {
            "cleanup.policy": [
              "delete"
            ],
            "retention.ms": 604800000
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "minerEvents"
    },
    "treasuryEvents": {
      "address": "events.treasury",
      "title": "events.treasury",
      "description": "Treasury trades (POST /api/treasury/execute) and exchange credentials (PUT /api/treasury/credentials).",
      "messages": {
        "treasuryTradeExecuted": {
          "name": "treasury.trade_executed",
          "title": "Treasury trade executed",
          "summary": "A treasury trade was filled (POST /api/treasury/execute).",
          "contentType": "avro/binary",
          "headers": "$ref:$.channels.minerEvents.messages.minerAdded.headers",
          "payload": "$ref:$.channels.minerEvents.messages.minerAdded.payload",
          "x-payload-schema": {
            "type": "record",
            "name": "TreasuryTradeExecuted",
            "namespace": "io.hashinsight.events",
            "doc": "Payload of kind treasury.trade_executed: a treasury trade was filled (POST /api/treasury/execute).",
            "fields": [
              {
                "name": "trade_id",
                "type": {
                  "type": "string",
                  "logicalType": "uuid"
                },
                "doc": "Id of the trade."
              },
              {
                "name": "side",
                "type": {
                  "type": "enum",
                  "name": "TradeSide",
                  "doc": "Direction of a trade.",
                  "symbols": [
                    "buy",
                    "sell"
                  ]
                },
                "doc": "buy or sell."
              },
              {
                "name": "asset",
                "type": {
                  "type": "enum",
                  "name": "TradeAsset",
                  "doc": "Traded asset.",
                  "symbols": [
                    "BTC"
                  ]
                },
                "doc": "Traded asset; only BTC today."
              },
              {
                "name": "amount_btc",
                "type": "double",
                "doc": "Quantity traded, in BTC (> 0)."
              },
              {
                "name": "price_usd",
                "type": "double",
                "doc": "Fill price in USD per BTC."
              },
              {
                "name": "notional_usd",
                "type": "double",
                "doc": "amount_btc x price_usd, in USD."
              },
              {
                "name": "venue",
                "type": "string",
                "doc": "Where the trade was executed, e.g. paper (the simulated venue)."
              }
            ]
          },
          "bindings": "$ref:$.channels.minerEvents.messages.minerAdded.bindings",
          "examples": [
            {
              "name": "paperSell",
              "summary": "0.01 BTC sold on the paper venue.",
              "payload": {
                "id": "1a3c5e7b-9d2f-4a6c-8e1b-7d9f1b3d5e84",
                "kind": "treasury.trade_executed",
                "user_id": "demo-user-1",
                "tenant_id": "demo-tenant",
                "entity_id": "9a4d2c7e-1b3f-4e8a-b6c5-7d9e0f1a2b34",
                "payload": "{\"trade_id\": \"9a4d2c7e-1b3f-4e8a-b6c5-7d9e0f1a2b34\", \"side\": \"sell\", \"asset\": \"BTC\", \"amount_btc\": 0.01, \"price_usd\": 100000.0, \"notional_usd\": 1000.0, \"venue\": \"paper\"}",
                "idempotency_key": "e1a3c5b7-9d0f-4e2a-b4c6-d8f0a2c4e613",
                "created_at": "2025-01-15T09:33:00.000001Z",
                "processed": false,
                "trace_id": null
              }
            }
          ],
          "x-parser-unique-object-id": "treasuryTradeExecuted"
        },
        "treasuryCredentialsUpdated": {
          "name": "treasury.credentials_updated",
          "title": "Exchange credentials updated",
          "summary": "A user stored or replaced an exchange API key (PUT /api/treasury/credentials); the key stays sealed.",
          "contentType": "avro/binary",
          "headers": "$ref:$.channels.minerEvents.messages.minerAdded.headers",
          "payload": "$ref:$.channels.minerEvents.messages.minerAdded.payload",
          "x-payload-schema": {
            "type": "record",
            "name": "TreasuryCredentialsUpdated",
            "namespace": "io.hashinsight.events",
            "doc": "Payload of kind treasury.credentials_updated: a user stored (or replaced) the API key of an exchange (PUT /api/treasury/credentials). The key and secret themselves are sealed in the database and never travel on the bus.",
            "fields": [
              {
                "name": "exchange",
                "type": "string",
                "doc": "Exchange (trading venue) the key is for, e.g. paper."
              },
              {
                "name": "master_key_id",
                "type": "string",
                "doc": "Id of the master key that wrapped the record's data key."
              }
            ]
          },
          "bindings": "$ref:$.channels.minerEvents.messages.minerAdded.bindings",
          "examples": [
            {
              "name": "paperKey",
              "summary": "demo-user-1 stored a key for the paper venue.",
              "payload": {
                "id": "6e8a0c2d-4f6b-4c8e-a0d2-5f7b9d1e3a65",
                "kind": "treasury.credentials_updated",
                "user_id": "demo-user-1",
                "tenant_id": "demo-tenant",
                "entity_id": "paper",
                "payload": "{\"exchange\": \"paper\", \"master_key_id\": \"mk-20250115-0001\"}",
                "idempotency_key": "b8d0f2a4-6c8e-4b0d-9f2a-4c6e8b0d2f54",
                "created_at": "2025-01-15T09:35:00.000001Z",
                "processed": false,
                "trace_id": null
              }
            }
          ],
          "x-parser-unique-object-id": "treasuryCredentialsUpdated"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "events.treasury",
          "partitions": 3,
          "replicas": 3,
          "topicConfiguration": {
            "cleanup.policy": [
              "delete"
            ],
            "retention.ms": 604800000
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "treasuryEvents"
    },
    "opsEvents": {
      "address": "events.ops",
      "title": "events.ops",
      "description": "Operations planning (maintenance windows, POST /api/ops/maintenance).",
      "messages": {
        "opsMaintenanceScheduled": {
          "name": "ops.maintenance_scheduled",
          "title": "Maintenance scheduled",
          "summary": "A maintenance window was planned for a miner.",
          "contentType": "avro/binary",
          "headers": "$ref:$.channels.minerEvents.messages.minerAdded.headers",
          "payload": "$ref:$.channels.minerEvents.messages.minerAdded.payload",
          "x-payload-schema": {
            "type": "record",
            "name": "OpsMaintenanceScheduled",
            "namespace": "io.hashinsight.events",
            "doc": "Payload of kind ops.maintenance_scheduled: a maintenance window was planned for a miner (POST /api/ops/maintenance). The miner earns nothing, and draws no power, for the hours of the window.",
            "fields": [
              {
                "name": "miner_id",
                "type": {
                  "type": "string",
                  "logicalType": "uuid"
                },
                "doc": "Id of the miner (miners.id)."
              },
              {
                "name": "day",
                "type": "string",
                "doc": "First UTC day the window touches, YYYY-MM-DD."
              },
              {
                "name": "window_start",
                "type": "string",
                "doc": "Start of the window, ISO-8601 UTC."
              },
              {
                "name": "window_end",
                "type": "string",
                "doc": "End of the window, ISO-8601 UTC, after window_start."
              },
              {
                "name": "reason",
                "type": [
                  "null",
                  "string"
                ],
                "default": null,
                "doc": "Why maintenance is needed, or null."
              },
              {
                "name": "window_id",
                "type": [
                  "null",
                  {
                    "type": "string",
                    "logicalType": "uuid"
                  }
                ],
                "default": null,
                "doc": "Id of the window (maintenance_windows.id), or null from producers before it existed."
              },
              {
                "name": "days",
                "type": {
                  "type": "array",
                  "items": "string"
                },
                "default": [],
                "doc": "Every UTC day (YYYY-MM-DD) the window touches: the consumer invalidates exactly these ops_schedule:{uid}:{yyyymmdd} keys."
              }
            ]
          },
          "bindings": "$ref:$.channels.minerEvents.messages.minerAdded.bindings",
          "examples": [
            {
              "name": "fanSwap",
              "summary": "A two-hour window to swap fans.",
              "payload": {
                "id": "3b5d7f9a-1c3e-4f6a-9b2d-8e0a2c4e6f95",
                "kind": "ops.maintenance_scheduled",
                "user_id": "demo-user-1",
                "tenant_id": "demo-tenant",
                "entity_id": "2e4a6c8b-0d2f-4a6c-9e1b-3d5f7b9c1a02",
                "payload": "{\"miner_id\": \"7d1c1f8e-2f5b-4b8e-9a53-0c6f4b8a1d01\", \"day\": \"2025-01-20\", \"window_start\": \"2025-01-20T08:00:00Z\", \"window_end\": \"2025-01-20T10:00:00Z\", \"reason\": \"Fan replacement\", \"window_id\": \"2e4a6c8b-0d2f-4a6c-9e1b-3d5f7b9c1a02\", \"days\": [\"2025-01-20\"]}",
                "idempotency_key": null,
                "created_at": "2025-01-15T10:00:00.000001Z",
                "processed": false,
                "trace_id": null
              }
            }
          ],
          "x-parser-unique-object-id": "opsMaintenanceScheduled"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "events.ops",
          "partitions": 3,
          "replicas": 3,
          "topicConfiguration": {
            "cleanup.policy": [
              "delete"
            ],
            "retention.ms": 604800000
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "opsEvents"
    },
    "crmEvents": {
      "address": "events.crm",
      "title": "events.crm",
      "description": "Customer-relationship events (subscription plan changes, PUT /api/subscription, which change rate limits).",
      "messages": {
        "crmSubscriptionChanged": {
          "name": "crm.subscription_changed",
          "title": "Subscription changed",
          "summary": "A user's plan changed, and with it their rate limit.",
          "contentType": "avro/binary",
          "headers": "$ref:$.channels.minerEvents.messages.minerAdded.headers",
          "payload": "$ref:$.channels.minerEvents.messages.minerAdded.payload",
          "x-payload-schema": {
            "type": "record",
            "name": "CrmSubscriptionChanged",
            "namespace": "io.hashinsight.events",
            "doc": "Payload of kind crm.subscription_changed: a user's plan changed (user_subscriptions), and with it their rate limit.",
            "fields": [
              {
                "name": "plan",
                "type": {
                  "type": "enum",
                  "name": "SubscriptionPlan",
                  "doc": "Subscription plan.",
                  "symbols": [
                    "free",
                    "pro",
                    "enterprise"
                  ]
                },
                "doc": "The new plan."
              },
              {
                "name": "requests_per_minute",
                "type": "int",
                "doc": "The plan's API rate limit, requests per minute (> 0)."
              },
              {
                "name": "burst",
                "type": [
                  "null",
                  "int"
                ],
                "default": null,
                "doc": "How many requests may arrive back to back on the new plan, or null from older producers."
              },
              {
                "name": "previous_plan",
                "type": [
                  "null",
                  "SubscriptionPlan"
                ],
                "default": null,
                "doc": "The plan before the change, or null."
              }
            ]
          },
          "bindings": "$ref:$.channels.minerEvents.messages.minerAdded.bindings",
          "examples": [
            {
              "name": "upgradeToPro",
              "summary": "demo-user-1 moved to the pro plan.",
              "payload": {
                "id": "5d7f9b1c-3e5a-4b8d-8f0a-9c1e3a5b7d06",
                "kind": "crm.subscription_changed",
                "user_id": "demo-user-1",
                "tenant_id": "demo-tenant",
                "entity_id": null,
                "payload": "{\"plan\": \"pro\", \"requests_per_minute\": 600, \"burst\": 100, \"previous_plan\": \"free\"}",
                "idempotency_key": null,
                "created_at": "2025-01-15T11:00:00.000001Z",
                "processed": false,
                "trace_id": null
              }
            }
          ],
          "x-parser-unique-object-id": "crmSubscriptionChanged"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "events.crm",
          "partitions": 3,
          "replicas": 3,
          "topicConfiguration": {
            "cleanup.policy": [
              "delete"
            ],
            "retention.ms": 604800000
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "crmEvents"
    },
    "marketEvents": {
      "address": "events.market",
      "title": "events.market",
      "description": "Market data (POST /api/market/snapshots): a new network snapshot reprices every user's portfolio and\nforecast, in every tenant. Keyed by the user who recorded it, like every topic; the consumers fan it out.\n",
      "messages": {
        "marketSnapshotRecorded": {
          "name": "market.snapshot_recorded",
          "title": "Market snapshot recorded",
          "summary": "A network snapshot was recorded (POST /api/market/snapshots); every portfolio and forecast is repriced.",
          "contentType": "avro/binary",
          "headers": "$ref:$.channels.minerEvents.messages.minerAdded.headers",
          "payload": "$ref:$.channels.minerEvents.messages.minerAdded.payload",
          "x-payload-schema": {
            "type": "record",
            "name": "MarketSnapshotRecorded",
            "namespace": "io.hashinsight.events",
            "doc": "Payload of kind market.snapshot_recorded: a network snapshot (BTC price, difficulty, block reward) was recorded (POST /api/market/snapshots). Every user's portfolio and forecast are priced with the newest snapshot, so the consumers recalculate every user of every tenant.",
            "fields": [
              {
                "name": "ts",
                "type": "string",
                "doc": "Time of the snapshot, ISO-8601 UTC (network_snapshots.ts)."
              },
              {
                "name": "btc_price_usd",
                "type": "double",
                "doc": "BTC price in USD (> 0)."
              },
              {
                "name": "difficulty",
                "type": "double",
                "doc": "Network difficulty (> 0)."
              },
              {
                "name": "block_reward_btc",
                "type": "double",
                "doc": "Block subsidy in BTC (> 0)."
              },
              {
                "name": "network_hashrate_ehs",
                "type": "double",
                "doc": "Network hashrate in EH/s: as given, else derived from the difficulty (D x 2^32 / 600 s)."
              },
              {
                "name": "is_latest",
                "type": "boolean",
                "default": true,
                "doc": "True when this snapshot is now the newest one (a back-dated snapshot changes no figure)."
              }
            ]
          },
          "bindings": "$ref:$.channels.minerEvents.messages.minerAdded.bindings",
          "examples": [
            {
              "name": "priceTick",
              "summary": "A new BTC price and difficulty.",
              "payload": {
                "id": "8a0c2e4f-6b8d-4e0a-b2c4-7d9f1b3e5a87",
                "kind": "market.snapshot_recorded",
                "user_id": "market-feed",
                "tenant_id": "ops",
                "entity_id": "2025-01-15T12:00:00Z",
                "payload": "{\"ts\": \"2025-01-15T12:00:00Z\", \"btc_price_usd\": 101250.0, \"difficulty\": 1.1e14, \"block_reward_btc\": 3.125, \"network_hashrate_ehs\": 787.4, \"is_latest\": true}",
                "idempotency_key": null,
                "created_at": "2025-01-15T12:00:00.000001Z",
                "processed": false,
                "trace_id": null
              }
            }
          ],
          "x-parser-unique-object-id": "marketSnapshotRecorded"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "events.market",
          "partitions": 3,
          "replicas": 3,
          "topicConfiguration": {
            "cleanup.policy": [
              "delete"
            ],
            "retention.ms": 604800000
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "marketEvents"
    },
    "deadLetters": {
      "address": "events.dlq",
      "title": "events.dlq",
      "description": "Records a consumer gave up on: poison records (undecodable, invalid envelope or payload) at once,\nothers after their retries. Kept 30 days for inspection and replay.\n",
      "messages": {
        "deadLetter": {
          "name": "dead_letter",
          "title": "Dead letter",
          "summary": "A record a consumer gave up on, with its original bytes and the reason.",
          "contentType": "avro/binary",
          "headers": {
            "type": "object",
            "description": "Copies of the main DeadLetter fields as UTF-8 strings, so tools can filter without decoding, plus the\noriginal record's `traceparent` when it had one.\n",
            "required": [
              "dlq.original.topic",
              "dlq.original.partition",
              "dlq.original.offset",
              "dlq.error",
              "dlq.error.class",
              "dlq.attempts",
              "dlq.consumer"
            ],
            "properties": {
              "traceparent": {
                "type": "string",
                "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": "The original record's trace context; `make redrive` continues it.",
                "x-parser-schema-id": "<anonymous-schema-18>"
              },
              "dlq.original.topic": {
                "type": "string",
                "description": "Topic the record came from.",
                "x-parser-schema-id": "<anonymous-schema-19>"
              },
              "dlq.original.partition": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "Its partition, in decimal.",
                "x-parser-schema-id": "<anonymous-schema-20>"
              },
              "dlq.original.offset": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "Its offset, in decimal.",
                "x-parser-schema-id": "<anonymous-schema-21>"
              },
              "dlq.error": {
                "type": "string",
                "maxLength": 1000,
                "description": "Reason of the last failure (truncated).",
                "x-parser-schema-id": "<anonymous-schema-22>"
              },
              "dlq.error.class": {
                "type": "string",
                "description": "Exception class of the last failure.",
                "x-parser-schema-id": "<anonymous-schema-23>"
              },
              "dlq.attempts": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "Attempts made, in decimal.",
                "x-parser-schema-id": "<anonymous-schema-24>"
              },
              "dlq.consumer": {
                "type": "string",
                "description": "Consumer group that gave up.",
                "x-parser-schema-id": "<anonymous-schema-25>"
              }
            },
            "x-parser-schema-id": "DeadLetterHeaders"
          },
          "payload": {
            "schemaFormat": "application/vnd.apache.avro;version=1.9.0",
            "schema": {
              "type": "object",
              "required": [
                "original_topic",
                "original_partition",
                "original_offset",
                "original_value",
                "error",
                "error_class",
                "attempts",
                "consumer",
                "failed_at"
              ],
              "properties": {
                "original_topic": {
                  "type": "string",
                  "description": "Topic the record was read from, e.g. events.miner.",
                  "x-parser-schema-id": "<anonymous-schema-26>"
                },
                "original_partition": {
                  "type": "integer",
                  "minimum": -2147483648,
                  "maximum": 2147483647,
                  "description": "Partition the record was read from.",
                  "x-parser-schema-id": "<anonymous-schema-27>"
                },
                "original_offset": {
                  "type": "integer",
                  "minimum": -9223372036854776000,
                  "maximum": 9223372036854776000,
                  "description": "Offset of the record in that partition.",
                  "x-parser-schema-id": "<anonymous-schema-28>"
                },
                "original_key": {
                  "oneOf": [
                    {
                      "type": "string",
                      "pattern": "^[\u0000-ÿ]*$",
                      "x-parser-schema-id": "<anonymous-schema-30>"
                    },
                    {
                      "type": "null",
                      "x-parser-schema-id": "<anonymous-schema-31>"
                    }
                  ],
                  "description": "The record's key bytes as read (the user_id in UTF-8), or null.",
                  "default": null,
                  "x-parser-schema-id": "<anonymous-schema-29>"
                },
                "original_value": {
                  "type": "string",
                  "pattern": "^[\u0000-ÿ]*$",
                  "description": "The record's value bytes as read, untouched (schema-registry framing included).",
                  "x-parser-schema-id": "<anonymous-schema-32>"
                },
                "error": {
                  "type": "string",
                  "description": "Human-readable reason of the last failure.",
                  "x-parser-schema-id": "<anonymous-schema-33>"
                },
                "error_class": {
                  "type": "string",
                  "description": "Exception class of the last failure, e.g. pydantic_core.ValidationError.",
                  "x-parser-schema-id": "<anonymous-schema-34>"
                },
                "attempts": {
                  "type": "integer",
                  "minimum": -2147483648,
                  "maximum": 2147483647,
                  "description": "How many times the consumer tried before giving up (1 for a poison record).",
                  "x-parser-schema-id": "<anonymous-schema-35>"
                },
                "consumer": {
                  "type": "string",
                  "description": "Name of the consumer (its consumer group) that gave up.",
                  "x-parser-schema-id": "<anonymous-schema-36>"
                },
                "failed_at": {
                  "type": "string",
                  "description": "When the consumer gave up: ISO-8601 UTC with microseconds.",
                  "x-parser-schema-id": "<anonymous-schema-37>"
                },
                "event_id": {
                  "oneOf": [
                    {
                      "type": "string",
                      "x-parser-schema-id": "<anonymous-schema-39>"
                    },
                    {
                      "type": "null",
                      "x-parser-schema-id": "<anonymous-schema-40>"
                    }
                  ],
                  "description": "Envelope id when the value could be decoded, else null.",
                  "default": null,
                  "x-parser-schema-id": "<anonymous-schema-38>"
                }
              },
              "description": "Value of a record on events.dlq: a record a consumer gave up on (poison or retries exhausted), with the original bytes and the reason, so it can be inspected and replayed.",
              "x-parser-schema-id": "io.hashinsight.events.DeadLetter"
            },
            "x-parser-original-payload": {
              "type": "record",
              "name": "DeadLetter",
              "namespace": "io.hashinsight.events",
              "doc": "Value of a record on events.dlq: a record a consumer gave up on (poison or retries exhausted), with the original bytes and the reason, so it can be inspected and replayed.",
              "fields": [
                {
                  "name": "original_topic",
                  "type": "string",
                  "doc": "Topic the record was read from, e.g. events.miner."
                },
                {
                  "name": "original_partition",
                  "type": "int",
                  "doc": "Partition the record was read from."
                },
                {
                  "name": "original_offset",
                  "type": "long",
                  "doc": "Offset of the record in that partition."
                },
                {
                  "name": "original_key",
                  "type": [
                    "null",
                    "bytes"
                  ],
                  "default": null,
                  "doc": "The record's key bytes as read (the user_id in UTF-8), or null."
                },
                {
                  "name": "original_value",
                  "type": "bytes",
                  "doc": "The record's value bytes as read, untouched (schema-registry framing included)."
                },
                {
                  "name": "error",
                  "type": "string",
                  "doc": "Human-readable reason of the last failure."
                },
                {
                  "name": "error_class",
                  "type": "string",
                  "doc": "Exception class of the last failure, e.g. pydantic_core.ValidationError."
                },
                {
                  "name": "attempts",
                  "type": "int",
                  "doc": "How many times the consumer tried before giving up (1 for a poison record)."
                },
                {
                  "name": "consumer",
                  "type": "string",
                  "doc": "Name of the consumer (its consumer group) that gave up."
                },
                {
                  "name": "failed_at",
                  "type": "string",
                  "doc": "When the consumer gave up: ISO-8601 UTC with microseconds."
                },
                {
                  "name": "event_id",
                  "type": [
                    "null",
                    "string"
                  ],
                  "default": null,
                  "doc": "Envelope id when the value could be decoded, else null."
                }
              ]
            },
            "x-parser-schema-id": "DeadLetter"
          },
          "bindings": "$ref:$.channels.minerEvents.messages.minerAdded.bindings",
          "examples": [
            {
              "name": "invalidPayload",
              "summary": "A miner.added whose payload failed validation (bytes shown as text).",
              "headers": {
                "dlq.original.topic": "events.miner",
                "dlq.original.partition": "2",
                "dlq.original.offset": "1042",
                "dlq.error": "1 validation error for MinerAdded: hashrate_ths Field required",
                "dlq.error.class": "pydantic_core.ValidationError",
                "dlq.attempts": "1",
                "dlq.consumer": "hashinsight.portfolio"
              },
              "payload": {
                "original_topic": "events.miner",
                "original_partition": 2,
                "original_offset": 1042,
                "original_key": "demo-user-1",
                "original_value": "<Avro EventEnvelope bytes>",
                "error": "1 validation error for MinerAdded: hashrate_ths Field required",
                "error_class": "pydantic_core.ValidationError",
                "attempts": 1,
                "consumer": "hashinsight.portfolio",
                "failed_at": "2025-01-15T09:30:01.500000Z",
                "event_id": "2c9a6f1e-4b7d-4e8a-9c3f-1d5e7a9b0c21"
              }
            }
          ],
          "x-parser-unique-object-id": "deadLetter"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "events.dlq",
          "partitions": 3,
          "replicas": 3,
          "topicConfiguration": {
            "cleanup.policy": [
              "delete"
            ],
            "retention.ms": 2592000000
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "deadLetters"
    }
  },
  "operations": {
    "publishMinerEvents": {
      "action": "send",
      "channel": "$ref:$.channels.minerEvents",
      "title": "Outbox connector publishes miner events",
      "summary": "Debezium publishes each captured miner.* outbox row.",
      "messages": [
        "$ref:$.channels.minerEvents.messages.minerAdded",
        "$ref:$.channels.minerEvents.messages.minerStatusChanged",
        "$ref:$.channels.minerEvents.messages.minerBulkImported",
        "$ref:$.channels.minerEvents.messages.minerUpdated"
      ],
      "x-parser-unique-object-id": "publishMinerEvents"
    },
    "publishTreasuryEvents": {
      "action": "send",
      "channel": "$ref:$.channels.treasuryEvents",
      "title": "Outbox connector publishes treasury events",
      "messages": [
        "$ref:$.channels.treasuryEvents.messages.treasuryTradeExecuted",
        "$ref:$.channels.treasuryEvents.messages.treasuryCredentialsUpdated"
      ],
      "x-parser-unique-object-id": "publishTreasuryEvents"
    },
    "publishOpsEvents": {
      "action": "send",
      "channel": "$ref:$.channels.opsEvents",
      "title": "Outbox connector publishes ops events",
      "messages": [
        "$ref:$.channels.opsEvents.messages.opsMaintenanceScheduled"
      ],
      "x-parser-unique-object-id": "publishOpsEvents"
    },
    "publishCrmEvents": {
      "action": "send",
      "channel": "$ref:$.channels.crmEvents",
      "title": "Outbox connector publishes crm events",
      "messages": [
        "$ref:$.channels.crmEvents.messages.crmSubscriptionChanged"
      ],
      "x-parser-unique-object-id": "publishCrmEvents"
    },
    "publishMarketEvents": {
      "action": "send",
      "channel": "$ref:$.channels.marketEvents",
      "title": "Outbox connector publishes market events",
      "messages": [
        "$ref:$.channels.marketEvents.messages.marketSnapshotRecorded"
      ],
      "x-parser-unique-object-id": "publishMarketEvents"
    },
    "portfolioConsumesMinerEvents": {
      "action": "receive",
      "channel": "$ref:$.channels.minerEvents",
      "title": "Portfolio consumer",
      "summary": "workers/portfolio_consumer.py: validate the envelope and payload, dedupe in consumer_inbox, take the Redis\nlock lock:recalc:{user_id}, recalc_user_portfolio(user_id), write user_portfolio:{uid} through.\n",
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "hashinsight.portfolio"
            ]
          },
          "bindingVersion": "0.5.0"
        }
      },
      "messages": [
        "$ref:$.channels.minerEvents.messages.minerAdded",
        "$ref:$.channels.minerEvents.messages.minerStatusChanged",
        "$ref:$.channels.minerEvents.messages.minerBulkImported",
        "$ref:$.channels.minerEvents.messages.minerUpdated"
      ],
      "x-parser-unique-object-id": "portfolioConsumesMinerEvents"
    },
    "intelConsumesMinerEvents": {
      "action": "receive",
      "channel": "$ref:$.channels.minerEvents",
      "title": "Intel consumer",
      "summary": "workers/intel_consumer.py refreshes forecast_daily of the user and invalidates forecast:{uid}.",
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "hashinsight.intel"
            ]
          },
          "bindingVersion": "0.5.0"
        }
      },
      "messages": [
        "$ref:$.channels.minerEvents.messages.minerAdded",
        "$ref:$.channels.minerEvents.messages.minerStatusChanged",
        "$ref:$.channels.minerEvents.messages.minerBulkImported",
        "$ref:$.channels.minerEvents.messages.minerUpdated"
      ],
      "x-parser-unique-object-id": "intelConsumesMinerEvents"
    },
    "portfolioConsumesMarketEvents": {
      "action": "receive",
      "channel": "$ref:$.channels.marketEvents",
      "title": "Portfolio consumer (market-data fan-out)",
      "summary": "Recalculates every user of every tenant with the newest snapshot: the tenants and their user ids come\nfrom one SECURITY DEFINER function (ids only), then per tenant `recalc_portfolios` runs in chunks of\nusers, one statement per table per chunk, under the tenant's exclusive fan-out lock (per-user\nrecalculations take it shared). Several snapshots in one batch make one fan-out. After the commit it\ninvalidates user_portfolio:{uid} and user_analytics:{uid} of every recalculated user, pipelined.\n",
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "hashinsight.portfolio"
            ]
          },
          "bindingVersion": "0.5.0"
        }
      },
      "messages": [
        "$ref:$.channels.marketEvents.messages.marketSnapshotRecorded"
      ],
      "x-parser-unique-object-id": "portfolioConsumesMarketEvents"
    },
    "intelConsumesMarketEvents": {
      "action": "receive",
      "channel": "$ref:$.channels.marketEvents",
      "title": "Intel consumer (market-data fan-out)",
      "summary": "Refreshes forecast_daily of every user of every tenant with the newest snapshot (the same fan-out as the\nportfolio consumer, with `refresh_forecasts`), then invalidates forecast:{uid}. This also keeps health's\nforecast_freshness_sec meaningful on a quiet system: each snapshot refreshes today's forecasts.\n",
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "hashinsight.intel"
            ]
          },
          "bindingVersion": "0.5.0"
        }
      },
      "messages": [
        "$ref:$.channels.marketEvents.messages.marketSnapshotRecorded"
      ],
      "x-parser-unique-object-id": "intelConsumesMarketEvents"
    },
    "intelConsumesOpsEvents": {
      "action": "receive",
      "channel": "$ref:$.channels.opsEvents",
      "title": "Intel consumer (maintenance windows)",
      "summary": "Refreshes the owner's forecast_daily, counting the window's hours as downtime (no revenue, no power\ncost), invalidates forecast:{uid} and exactly the ops_schedule:{uid}:{yyyymmdd} keys of the days the\nwindow touches (the payload's `days`).\n",
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "hashinsight.intel"
            ]
          },
          "bindingVersion": "0.5.0"
        }
      },
      "messages": [
        "$ref:$.channels.opsEvents.messages.opsMaintenanceScheduled"
      ],
      "x-parser-unique-object-id": "intelConsumesOpsEvents"
    },
    "portfolioMarksTreasuryEvents": {
      "action": "receive",
      "channel": "$ref:$.channels.treasuryEvents",
      "title": "Portfolio consumer (outbox bookkeeping)",
      "summary": "The portfolio consumer reads every events.* topic only to mark each event's outbox row processed\n(migrations/0007): outbox_backlog in /api/health then counts what has not come through the bus yet.\nIt applies nothing for these events.\n",
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "hashinsight.portfolio"
            ]
          },
          "bindingVersion": "0.5.0"
        }
      },
      "messages": [
        "$ref:$.channels.treasuryEvents.messages.treasuryTradeExecuted",
        "$ref:$.channels.treasuryEvents.messages.treasuryCredentialsUpdated"
      ],
      "x-parser-unique-object-id": "portfolioMarksTreasuryEvents"
    },
    "portfolioMarksOpsEvents": {
      "action": "receive",
      "channel": "$ref:$.channels.opsEvents",
      "title": "Portfolio consumer (outbox bookkeeping)",
      "summary": "The portfolio consumer reads every events.* topic only to mark each event's outbox row processed\n(migrations/0007): outbox_backlog in /api/health then counts what has not come through the bus yet.\nIt applies nothing for these events.\n",
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "hashinsight.portfolio"
            ]
          },
          "bindingVersion": "0.5.0"
        }
      },
      "messages": [
        "$ref:$.channels.opsEvents.messages.opsMaintenanceScheduled"
      ],
      "x-parser-unique-object-id": "portfolioMarksOpsEvents"
    },
    "portfolioConsumesCrmEvents": {
      "action": "receive",
      "channel": "$ref:$.channels.crmEvents",
      "title": "Portfolio consumer (plan changes)",
      "summary": "Invalidates the rate limiter's view of the user's plan on every web worker: one Redis PUBLISH on\n`hashinsight:plan-changed`, which each web process's subscriber turns into dropping its cached plan,\nso the new limits apply within a second (the API process that served the change drops its own at once).\n",
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "hashinsight.portfolio"
            ]
          },
          "bindingVersion": "0.5.0"
        }
      },
      "messages": [
        "$ref:$.channels.crmEvents.messages.crmSubscriptionChanged"
      ],
      "x-parser-unique-object-id": "portfolioConsumesCrmEvents"
    },
    "publishDeadLetters": {
      "action": "send",
      "channel": "$ref:$.channels.deadLetters",
      "title": "Consumers publish dead letters",
      "summary": "Any consumer that gives up on a record publishes it here, with the reason.",
      "messages": [
        "$ref:$.channels.deadLetters.messages.deadLetter"
      ],
      "x-parser-unique-object-id": "publishDeadLetters"
    }
  },
  "components": {
    "schemas": {
      "EventEnvelope": "$ref:$.channels.minerEvents.messages.minerAdded.payload",
      "DeadLetter": "$ref:$.channels.deadLetters.messages.deadLetter.payload",
      "EventHeaders": "$ref:$.channels.minerEvents.messages.minerAdded.headers",
      "DeadLetterHeaders": "$ref:$.channels.deadLetters.messages.deadLetter.headers"
    },
    "messageBindings": {
      "userKeyed": "$ref:$.channels.minerEvents.messages.minerAdded.bindings"
    },
    "messages": {
      "minerAdded": "$ref:$.channels.minerEvents.messages.minerAdded",
      "minerStatusChanged": "$ref:$.channels.minerEvents.messages.minerStatusChanged",
      "minerBulkImported": "$ref:$.channels.minerEvents.messages.minerBulkImported",
      "treasuryTradeExecuted": "$ref:$.channels.treasuryEvents.messages.treasuryTradeExecuted",
      "minerUpdated": "$ref:$.channels.minerEvents.messages.minerUpdated",
      "treasuryCredentialsUpdated": "$ref:$.channels.treasuryEvents.messages.treasuryCredentialsUpdated",
      "marketSnapshotRecorded": "$ref:$.channels.marketEvents.messages.marketSnapshotRecorded",
      "opsMaintenanceScheduled": "$ref:$.channels.opsEvents.messages.opsMaintenanceScheduled",
      "crmSubscriptionChanged": "$ref:$.channels.crmEvents.messages.crmSubscriptionChanged",
      "deadLetter": "$ref:$.channels.deadLetters.messages.deadLetter"
    }
  },
  "x-parser-spec-parsed": true,
  "x-parser-api-version": 3,
  "x-parser-spec-stringified": true
};
    const config = {"show":{"sidebar":true},"sidebar":{"showOperations":"byDefault"}};
    const appRoot = document.getElementById('root');
    AsyncApiStandalone.render(
        { schema, config, }, appRoot
    );
  