import { createContext } from './config/context.ts';
import { main } from './run.ts';

const { ctx, exit } = createContext();
void main(process.argv.slice(2), ctx).then(exit);
