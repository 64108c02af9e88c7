import { createContext } from './before-consent/config/context.ts';
import { main } from './before-consent/run.ts';

const { ctx, exit } = createContext();
void main(process.argv.slice(2), ctx).then(exit);
