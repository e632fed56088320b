// Copyright 2026 the Kitewire authors. MIT license.
import assert from "node:assert/strict";
import { EventQueue } from "./events.ts";

/** Reads what is queued now, without waiting for more. */
async function drain<T>(queue: EventQueue<T>, count: number): Promise<T[]> {
  const iterator = queue[Symbol.asyncIterator]();
  const out: T[] = [];
  for (let i = 0; i < count; i++) {
    const result = await iterator.next();
    if (result.done === true) break;
    out.push(result.value);
  }
  return out;
}

Deno.test("EventQueue() delivers queued events in order", async () => {
  const queue = new EventQueue<number>(10);
  for (let i = 0; i < 5; i++) queue.push(i);
  assert.deepEqual(await drain(queue, 5), [0, 1, 2, 3, 4]);
});

Deno.test("EventQueue() hands an event straight to a waiting reader", async () => {
  const queue = new EventQueue<string>(1);
  const iterator = queue[Symbol.asyncIterator]();
  const first = iterator.next();
  const second = iterator.next();
  queue.push("a");
  queue.push("b");
  queue.push("c");
  assert.deepEqual(await first, { value: "a", done: false });
  assert.deepEqual(await second, { value: "b", done: false });
  // "c" found no reader waiting: it was queued.
  assert.deepEqual(await iterator.next(), { value: "c", done: false });
});

Deno.test("EventQueue() drops the oldest events past its capacity", async () => {
  const queue = new EventQueue<number>(3);
  for (let i = 0; i < 10; i++) queue.push(i);
  queue.close();
  const seen: number[] = [];
  for await (const event of queue) seen.push(event);
  assert.deepEqual(seen, [7, 8, 9]);
});

Deno.test("EventQueue() keeps at most capacity events however many are pushed", async () => {
  const queue = new EventQueue<{ n: number }>(1000);
  for (let i = 0; i < 100_000; i++) queue.push({ n: i });
  queue.close();
  let count = 0;
  let first: number | undefined;
  for await (const event of queue) {
    first ??= event.n;
    count++;
  }
  assert.equal(count, 1000);
  assert.equal(first, 99_000);
});

Deno.test("EventQueue() close() ends iteration after the queued events", async () => {
  const queue = new EventQueue<number>(10);
  queue.push(1);
  queue.push(2);
  queue.close();
  queue.push(3); // after close: dropped
  const seen: number[] = [];
  for await (const event of queue) seen.push(event);
  assert.deepEqual(seen, [1, 2]);
  // Every later iteration ends at once.
  for await (const _ of queue) assert.fail("no events after close");
});

Deno.test("EventQueue() close() ends every waiting reader", async () => {
  const queue = new EventQueue<number>(10);
  const readers = [1, 2, 3].map(async () => {
    const seen: number[] = [];
    for await (const event of queue) seen.push(event);
    return seen;
  });
  await Promise.resolve();
  queue.close();
  assert.deepEqual(await Promise.all(readers), [[], [], []]);
});

Deno.test("EventQueue() leaves other events queued when a reader breaks out", async () => {
  const queue = new EventQueue<number>(10);
  for (let i = 0; i < 4; i++) queue.push(i);
  for await (const event of queue) {
    assert.equal(event, 0);
    break;
  }
  queue.close();
  const rest: number[] = [];
  for await (const event of queue) rest.push(event);
  assert.deepEqual(rest, [1, 2, 3]);
});
