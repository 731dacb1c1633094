package auth

import "container/list"

// lru is a map whose entries are kept in least-recently-used order so that
// the oldest can be evicted when it grows past its cap. It is not safe for
// concurrent use; its owners hold a mutex.
type lru[V any] struct {
	max   int
	items map[string]*list.Element
	order *list.List // front = most recently used
}

type lruEntry[V any] struct {
	key string
	val V
}

func newLRU[V any](maxKeys int) *lru[V] {
	return &lru[V]{max: maxKeys, items: make(map[string]*list.Element), order: list.New()}
}

// get returns the entry for key and marks it recently used.
func (c *lru[V]) get(key string) (V, bool) {
	if el, ok := c.items[key]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*lruEntry[V]).val, true
	}
	var zero V
	return zero, false
}

// peek returns the entry for key without changing its position.
func (c *lru[V]) peek(key string) (V, bool) {
	if el, ok := c.items[key]; ok {
		return el.Value.(*lruEntry[V]).val, true
	}
	var zero V
	return zero, false
}

// put stores val under key as most recently used, evicting the least
// recently used entry when the cap is exceeded.
func (c *lru[V]) put(key string, val V) {
	if el, ok := c.items[key]; ok {
		el.Value.(*lruEntry[V]).val = val
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&lruEntry[V]{key: key, val: val})
	for c.order.Len() > c.max {
		c.removeElement(c.order.Back())
	}
}

func (c *lru[V]) delete(key string) {
	if el, ok := c.items[key]; ok {
		c.removeElement(el)
	}
}

// oldest returns the least recently used entry.
func (c *lru[V]) oldest() (string, V, bool) {
	el := c.order.Back()
	if el == nil {
		var zero V
		return "", zero, false
	}
	e := el.Value.(*lruEntry[V])
	return e.key, e.val, true
}

func (c *lru[V]) len() int { return c.order.Len() }

func (c *lru[V]) removeElement(el *list.Element) {
	c.order.Remove(el)
	delete(c.items, el.Value.(*lruEntry[V]).key)
}
