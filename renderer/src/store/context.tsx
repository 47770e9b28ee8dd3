import { createContext, useContext, useMemo } from 'react';
import type { ReactNode } from 'react';
import { useStore } from 'zustand';
import type { StrataState, StrataStore } from './strataStore.js';

const StoreContext = createContext<StrataStore | null>(null);

export function StoreProvider({ store, children }: { store: StrataStore; children: ReactNode }) {
  return <StoreContext.Provider value={store}>{children}</StoreContext.Provider>;
}

/** A slice of the store; the component re-renders when that slice changes. */
export function useStrata<T>(selector: (state: StrataState) => T): T {
  const store = useContext(StoreContext);
  if (!store) throw new Error('useStrata outside StoreProvider');
  return useStore(store, selector);
}

/**
 * The store's actions. They are created once with the store and never replaced, so they are read
 * once, without a subscription, and the object stays the same across renders (safe in effect
 * dependencies).
 */
export function useActions(): StrataState {
  const store = useContext(StoreContext);
  if (!store) throw new Error('useActions outside StoreProvider');
  return useMemo(() => store.getState(), [store]);
}
