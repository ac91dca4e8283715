import { odata, type TableClient } from '@azure/data-tables';

import type {
  Alert,
  AlertEvent,
  AlertRule,
  AlertRuleDefinition,
  Delivery,
  DeliveryState,
  OpenAlert,
  Resolution,
} from '../domain/alerts';
import type { AlertStore } from '../domain/ports';
import { isWriteConflict, type Versioned } from '../domain/versioned';
import { conditionally, getOrUndefined, invertedTime } from './tables';
import { type Action, submitTransaction } from './transaction';

/**
 * Table `AlertRules` — PartitionKey `rule`, RowKey = rule name → metric, threshold, windowMinutes, webhookUrl
 * ('' for none: a Merge cannot remove a property), updatedAt, and `open` (JSON): the rule's open alert and how far
 * its firing or resolution got. The job and DELETE change `open` only with the rule's ETag; PUT merges the
 * definition, which changes the ETag, so a run that read the rule before re-reads it next time.
 *
 * Table `Alerts` — one partition, `alerts`, so that an alert and its webhook delivery are written in one
 * entity-group transaction:
 *   RowKey `a|<inverted firedAt>|<rule>`              the alert (newest first) with its deliveries' states
 *   RowKey `due|<inverted firedAt>|<rule>|<event>`    a delivery not yet finished (the outbox): url, payload,
 *                                                     attempts, nextAttemptAt; removed once Delivered or Failed,
 *                                                     in the transaction that says so on the alert
 * A rule fires at most once per run (a minute), so the partition grows slowly and listing it is a range query.
 * The alert's key is fixed by its rule and firing time, so writing it again finds it instead of adding one.
 */
const RULES = 'rule';
const PARTITION = 'alerts';
const alertKey = (rule: string, firedAt: string) => `a|${invertedTime(firedAt)}|${rule}`;
const dueKey = (d: Pick<Delivery, 'rule' | 'firedAt' | 'event'>) =>
  `due|${invertedTime(d.firedAt)}|${d.rule}|${d.event}`;
const deliveryProperty = (event: AlertEvent) => (event === 'fired' ? 'delivery' : 'resolutionDelivery');

interface StoredRule {
  metric: AlertRule['metric'];
  threshold: number;
  windowMinutes: number;
  webhookUrl?: string;
  updatedAt: string;
  open?: string;
}

type StoredAlert = Omit<Alert, 'delivery' | 'resolutionDelivery'> & { delivery?: string; resolutionDelivery?: string };

type StoredDelivery = Omit<Delivery, 'payload'> & { payload: string };

function ruleOf(name: string, e: StoredRule): AlertRule {
  return {
    name,
    metric: e.metric,
    threshold: e.threshold,
    windowMinutes: e.windowMinutes,
    ...(e.webhookUrl ? { webhookUrl: e.webhookUrl } : {}),
    updatedAt: e.updatedAt,
    ...(e.open ? { open: JSON.parse(e.open) as OpenAlert } : {}),
  };
}

function alertOf(e: StoredAlert): Alert {
  const alert: Alert = {
    rule: e.rule,
    metric: e.metric,
    value: e.value,
    threshold: e.threshold,
    windowMinutes: e.windowMinutes,
    firedAt: e.firedAt,
  };
  if (e.resolvedAt) alert.resolvedAt = e.resolvedAt;
  if (typeof e.resolvedValue === 'number') alert.resolvedValue = e.resolvedValue;
  if (e.resolvedReason) alert.resolvedReason = e.resolvedReason;
  if (e.delivery) alert.delivery = JSON.parse(e.delivery) as DeliveryState;
  if (e.resolutionDelivery) alert.resolutionDelivery = JSON.parse(e.resolutionDelivery) as DeliveryState;
  return alert;
}

const pendingState = (): DeliveryState => ({ status: 'Pending', attempts: 0 });

function dueEntity(d: Delivery) {
  return { partitionKey: PARTITION, rowKey: dueKey(d), ...d, payload: JSON.stringify(d.payload) };
}

export class TableAlerts implements AlertStore {
  constructor(
    private readonly rulesTable: TableClient,
    private readonly table: TableClient,
  ) {}

  async getRule(name: string): Promise<Versioned<AlertRule> | undefined> {
    const e = await getOrUndefined<StoredRule>(this.rulesTable, RULES, name);
    return e && { value: ruleOf(name, e), etag: e.etag };
  }

  async rules(): Promise<Versioned<AlertRule>[]> {
    const rules: Versioned<AlertRule>[] = [];
    const filter = odata`PartitionKey eq ${RULES}`;
    for await (const e of this.rulesTable.listEntities<StoredRule>({ queryOptions: { filter } })) {
      rules.push({ value: ruleOf(e.rowKey!, e), etag: e.etag });
    }
    return rules;
  }

  async putRule(definition: AlertRuleDefinition, now: Date): Promise<AlertRule> {
    const { name, metric, threshold, windowMinutes, webhookUrl } = definition;
    await this.rulesTable.upsertEntity(
      {
        partitionKey: RULES,
        rowKey: name,
        metric,
        threshold,
        windowMinutes,
        webhookUrl: webhookUrl ?? '',
        updatedAt: now.toISOString(),
      },
      'Merge',
    );
    return (await this.getRule(name))!.value;
  }

  async saveRule(rule: AlertRule, etag: string): Promise<string> {
    const { name, open, webhookUrl, ...rest } = rule;
    const entity = {
      partitionKey: RULES,
      rowKey: name,
      ...rest,
      webhookUrl: webhookUrl ?? '',
      ...(open ? { open: JSON.stringify(open) } : {}),
    };
    const answer = await conditionally(() => this.rulesTable.updateEntity(entity, 'Replace', { etag }));
    return answer.etag!;
  }

  async deleteRule(name: string, etag: string): Promise<void> {
    await conditionally(() => this.rulesTable.deleteEntity(RULES, name, { etag }));
  }

  async recordFiring(alert: Alert, delivery?: Delivery): Promise<void> {
    const { delivery: _state, resolutionDelivery: _resolution, ...fields } = alert;
    const actions: Action[] = [
      [
        'create',
        {
          partitionKey: PARTITION,
          rowKey: alertKey(alert.rule, alert.firedAt),
          ...fields,
          ...(delivery ? { delivery: JSON.stringify(pendingState()) } : {}),
        },
      ],
    ];
    if (delivery) actions.push(['create', dueEntity(delivery)]);
    try {
      await conditionally(() => submitTransaction(this.table, actions));
    } catch (error) {
      // Written before (the run that wrote it crashed before it could say so on the rule).
      if (!(isWriteConflict(error) && error.reason === 'exists')) throw error;
    }
  }

  async recordResolution(rule: string, firedAt: string, resolution: Resolution, delivery?: Delivery): Promise<void> {
    const rowKey = alertKey(rule, firedAt);
    for (let attempt = 0; ; attempt++) {
      const current = await getOrUndefined<StoredAlert>(this.table, PARTITION, rowKey);
      // Resolved before (by a run that crashed before it could say so on the rule), or never recorded at all.
      if (!current || current.resolvedAt) return;
      const actions: Action[] = [
        [
          'update',
          {
            partitionKey: PARTITION,
            rowKey,
            resolvedAt: resolution.resolvedAt,
            ...(resolution.value === undefined ? {} : { resolvedValue: resolution.value }),
            resolvedReason: resolution.reason,
            ...(delivery ? { resolutionDelivery: JSON.stringify(pendingState()) } : {}),
          },
          'Merge',
          // Only the version read unresolved: a concurrent resolution cannot add a second delivery.
          { etag: current.etag },
        ],
      ];
      if (delivery) actions.push(['create', dueEntity(delivery)]);
      try {
        await conditionally(() => submitTransaction(this.table, actions));
        return;
      } catch (error) {
        // A delivery of the firing updated the alert meanwhile: read it again.
        if (!isWriteConflict(error) || attempt >= 5) throw error;
      }
    }
  }

  async page(top: number, after?: string): Promise<{ items: Alert[]; next?: string }> {
    const filter = odata`PartitionKey eq ${PARTITION} and RowKey gt ${after ?? 'a|'} and RowKey lt ${'a|~'}`;
    const entries: { rowKey: string; alert: Alert }[] = [];
    const pages = this.table.listEntities<StoredAlert>({ queryOptions: { filter } }).byPage({ maxPageSize: top + 1 });
    for await (const page of pages) {
      for (const e of page) entries.push({ rowKey: e.rowKey!, alert: alertOf(e) });
      if (entries.length > top) break;
    }
    const items = entries.slice(0, top);
    return {
      items: items.map((e) => e.alert),
      ...(entries.length > top ? { next: items.at(-1)!.rowKey } : {}),
    };
  }

  async dueDeliveries(now: string, limit: number): Promise<Versioned<Delivery>[]> {
    const filter = odata`PartitionKey eq ${PARTITION} and RowKey gt ${'due|'} and RowKey lt ${'due|~'} and nextAttemptAt le ${now}`;
    const due: Versioned<Delivery>[] = [];
    const pages = this.table.listEntities<StoredDelivery>({ queryOptions: { filter } }).byPage({ maxPageSize: limit });
    for await (const page of pages) {
      for (const e of page) {
        due.push({
          value: {
            rule: e.rule,
            firedAt: e.firedAt,
            event: e.event,
            url: e.url,
            payload: JSON.parse(e.payload) as Delivery['payload'],
            attempts: e.attempts,
            nextAttemptAt: e.nextAttemptAt,
            ...(e.lastError ? { lastError: e.lastError } : {}),
          },
          etag: e.etag,
        });
        if (due.length === limit) return due;
      }
    }
    return due;
  }

  async deliveryAttempted(delivery: Versioned<Delivery>, state: DeliveryState): Promise<void> {
    const d = delivery.value;
    const alert = {
      partitionKey: PARTITION,
      rowKey: alertKey(d.rule, d.firedAt),
      [deliveryProperty(d.event)]: JSON.stringify(state),
    };
    const due = { partitionKey: PARTITION, rowKey: dueKey(d) };
    // The outbox entry's ETag makes the attempt's outcome count once, whoever else took the same delivery: a
    // finished delivery's entry is deleted at that ETag, a pending one's next attempt written under it.
    const outbox: Action =
      state.status === 'Pending'
        ? [
            'update',
            { ...due, attempts: state.attempts, nextAttemptAt: state.nextAttemptAt, lastError: state.lastError ?? '' },
            'Merge',
            { etag: delivery.etag },
          ]
        : ['delete', due, { etag: delivery.etag }];
    await conditionally(() => submitTransaction(this.table, [['update', alert, 'Merge'], outbox]));
  }
}
