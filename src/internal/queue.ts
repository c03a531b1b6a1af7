/**
 * A first-in first-out queue for the messages a socket read ahead.
 *
 * Not an array with `shift()`: V8 shifts a short array by moving every
 * element down one slot, and a long-lived array's storage sits in the old
 * generation, where each moved pointer to a young message takes the write
 * barrier's slow path (callgrind: seven per message on a streaming socket,
 * about a sixth of the receiver's user-space instructions). Here a taken slot
 * is only cleared, and once the queue is empty it starts over in fresh
 * storage, which is young: filling it needs no remembered-set entries.
 */
export class Queue<T> {
  private items: Array<T | undefined> = []
  private head = 0

  /** How many items wait. */
  get length(): number {
    return this.items.length - this.head
  }

  /** Adds an item at the end. */
  push(item: T): void {
    this.items.push(item)
  }

  /** The first item, without taking it. */
  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined
  }

  /** Takes the first item, or `undefined` when the queue is empty. */
  shift(): T | undefined {
    const items = this.items
    const head = this.head
    if (head >= items.length) return undefined
    const item = items[head]
    if (head + 1 === items.length) {
      // Empty again: drop the storage (the next push allocates a young one).
      this.items = []
      this.head = 0
    } else {
      // Release the slot so that the item can be collected once taken.
      items[head] = undefined
      this.head = head + 1
    }
    return item
  }

  /** Takes every item, in order, leaving the queue empty. */
  drain(): T[] {
    const taken = this.items.slice(this.head) as T[]
    this.items = []
    this.head = 0
    return taken
  }
}
