import { createContext } from './context.ts';
import { main } from './run.ts';

void main(process.argv.slice(2), createContext()).then((code) => {
  process.exitCode = code;
});
