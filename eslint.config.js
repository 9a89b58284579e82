import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules', '.sandbox', 'test-artifacts', 'test/cluster'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/http/**', '**/workers/**'],
              message: 'imports flow from http/ and workers/ inward, never back',
            },
          ],
        },
      ],
    },
  },
  {
    files: [
      'src/http/**',
      'workers/**',
      'src/main.ts',
      'test/**',
      'bench/**',
      'scripts/**',
      'bin/**',
    ],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // Tests index into arrays they just asserted the length of.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
