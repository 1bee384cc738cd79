import { z } from 'zod';

/** Amounts travel as JSON numbers with at most 2 decimals and are computed in integer cents. */
export type Cents = number;

const EPSILON = 1e-6;

export function hasAtMostTwoDecimals(amount: number): boolean {
  const scaled = amount * 100;
  return Math.abs(scaled - Math.round(scaled)) < EPSILON;
}

export function toCents(amount: number): Cents {
  return Math.round(amount * 100);
}

export function fromCents(cents: Cents): number {
  return cents / 100;
}

export const moneySchema = z
  .number()
  .finite()
  .refine(hasAtMostTwoDecimals, { message: 'must have at most 2 decimals' });

export const nonNegativeMoneySchema = moneySchema.refine((amount) => amount >= 0, {
  message: 'must be greater than or equal to 0',
});

export const positiveMoneySchema = moneySchema.refine((amount) => amount > 0, {
  message: 'must be greater than 0',
});
